"""TorchScript runtime: ``torch.jit.load`` of the two traced graphs, driven by the shared
decoding loop. Needs only torch, not transformers."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from runtimes.base import RuntimeOptions
from runtimes.engines.graph import GraphRuntime
from runtimes.engines.registry import register
from runtimes.errors import ArtifactError, DeviceError, OptionError


@register
class TorchScriptRuntime(GraphRuntime):
    """Whisper as two TorchScript modules (see exporters.families.whisper)."""

    format = "torchscript"
    graph_files = ("encoder.pt", "decoder.pt")
    exports_alignment = True

    def __init__(self, model_dir: Path, options: RuntimeOptions) -> None:
        if not options.trust_code:
            raise OptionError(
                f"{model_dir} is a TorchScript artifact, and TorchScript files are programs: "
                f"loading runs the code they contain. Load only artifacts you made or trust, "
                f"with RuntimeOptions(trust_code=True) (--trust-torchscript on the command line)")
        super().__init__(model_dir, options)
        import torch

        self._check_precision(options.precision)
        if options.device == "cuda" and not torch.cuda.is_available():
            raise DeviceError("device 'cuda' was requested but PyTorch sees no CUDA GPU")
        traced_on = self._spec.traced_on  # "cpu" for older artifacts, which were traced there
        if traced_on != options.device:
            raise OptionError(
                f"{model_dir} was traced for device {traced_on!r} and a trace keeps the device "
                f"it was made on; export it again with --device {options.device}")
        if options.threads:
            torch.set_num_threads(options.threads)
        self._device = torch.device(options.device)
        self._dtype = torch.float16 if self.precision == "fp16" else torch.float32
        self._encoder, self._decoder = (self._load(torch, name) for name in self.graph_files)
        aligner = "alignment.pt"  # exported with --word-timestamps
        self._aligner = (self._load(torch, aligner) if (self.model_dir / aligner).is_file()
                         else None)
        self.encoder_batch = 2 if options.device == "cpu" else 0  # measured: see decoding.py

    def _load(self, torch, name: str):
        import warnings

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # torch 2.13 deprecates jit
                return torch.jit.load(str(self.model_dir / name), map_location=self._device).eval()
        except (RuntimeError, ValueError) as exc:
            raise ArtifactError(f"torch.jit cannot load {self.model_dir / name}: {exc}") from exc

    def _run(self, module, *inputs):
        import torch

        with torch.inference_mode():
            return module(*inputs)

    def _features(self, features: np.ndarray):
        import torch

        return torch.from_numpy(features).to(self._device, self._dtype)

    def encode(self, features: np.ndarray) -> np.ndarray:
        return self._run(self._encoder, self._features(features))[0].float().cpu().numpy()

    def cross_cache(self, features: np.ndarray) -> list:
        return list(self._run(self._encoder, self._features(features))[1:])

    def empty_cache(self, batch: int) -> list:
        import torch

        return [torch.zeros(shape, dtype=self._dtype, device=self._device)
                for shape in self._cache_shapes(batch)]

    def decode_step(self, tokens: np.ndarray, cache: list, cross: list, lengths=None):
        import torch

        ids = torch.from_numpy(tokens).to(self._device)
        lengths = self._lengths(tokens, cache, lengths)
        extra = [] if lengths is None else [torch.from_numpy(lengths).to(self._device)]
        logits, *present = self._run(self._decoder, ids, *cache, *cross, *extra)
        return logits.float().cpu().numpy(), present

    def select(self, cache: list, rows: np.ndarray) -> list:
        import torch

        index = torch.from_numpy(np.asarray(rows)).to(self._device)
        return [c.index_select(0, index) for c in cache]

    def concat(self, parts: list) -> list:
        import torch

        return [torch.cat(values) for values in zip(*parts)]

    @property
    def aligns(self) -> bool:
        return self._aligner is not None

    def alignment_pass(self, tokens: np.ndarray, cross) -> tuple[np.ndarray, np.ndarray]:
        """The alignment graph (fp32 whatever the artifact's precision) on the cross K/V."""
        import torch

        ids = torch.from_numpy(tokens).to(self._device)
        logits, attention = self._run(self._aligner, ids, *(c.float() for c in cross))
        return logits.float().cpu().numpy(), attention.float().cpu().numpy()

    def close(self) -> None:
        self._encoder = self._decoder = self._aligner = None
