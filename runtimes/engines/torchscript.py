"""TorchScript runtime: ``torch.jit.load`` of the two traced graphs, driven by the shared
decoding loop. Needs only torch, not transformers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from runtimes.base import DecodingOptions, RuntimeOptions, WhisperRuntime
from runtimes.decoding import SuppressRules, detect_language, generate
from runtimes.errors import ArtifactError, DeviceError, OptionError
from runtimes.registry import register

ENCODER, DECODER, GRAPH_SPEC = "encoder.pt", "decoder.pt", "graph.json"


@register
class TorchScriptRuntime(WhisperRuntime):
    """Whisper as two TorchScript modules (see exporters.families.whisper)."""

    format = "torchscript"

    def __init__(self, model_dir: Path, options: RuntimeOptions) -> None:
        super().__init__(model_dir, options)
        import torch

        if options.provider is not None:
            raise OptionError(f"provider {options.provider!r} applies to ONNX artifacts only")
        if options.device == "cuda" and not torch.cuda.is_available():
            raise DeviceError("device 'cuda' was requested but PyTorch sees no CUDA GPU")
        if options.threads:
            torch.set_num_threads(options.threads)
        self._spec = json.loads((self.model_dir / GRAPH_SPEC).read_text())
        if options.precision not in (None, self._spec["precision"]):
            raise OptionError(f"this TorchScript artifact computes in {self._spec['precision']}; "
                              f"precision {options.precision!r} needs its own export")
        self._device = torch.device(options.device)
        self._dtype = torch.float16 if self._spec["precision"] == "fp16" else torch.float32
        self._rules = SuppressRules.load(self.model_dir)
        self._encoder, self._decoder = (self._load(torch, name) for name in (ENCODER, DECODER))

    def _load(self, torch, name: str):
        import warnings

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # torch 2.13 deprecates jit
                return torch.jit.load(str(self.model_dir / name), map_location=self._device).eval()
        except (RuntimeError, ValueError) as exc:
            raise ArtifactError(f"torch.jit cannot load {self.model_dir / name}: {exc}") from exc

    @classmethod
    def sniff(cls, model_dir: Path) -> bool:
        return all((Path(model_dir) / f).is_file() for f in (ENCODER, DECODER, GRAPH_SPEC))

    @property
    def multilingual(self) -> bool:
        return self._spec["vocab_size"] >= 51865

    @property
    def n_mels(self) -> int:
        return int(self._spec["n_mels"])

    @property
    def precision(self) -> str:
        return self._spec["precision"]

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

        heads, d = self._spec["n_heads"], self._spec["d_model"]
        shape = (batch, heads, 0, d // heads)
        return [torch.zeros(shape, dtype=self._dtype, device=self._device)
                for _ in range(2 * self._spec["n_layers"])]

    def decode_step(self, tokens: np.ndarray, cache: list, cross: list):
        import torch

        ids = torch.from_numpy(tokens).to(self._device)
        logits, *present = self._run(self._decoder, ids, *cache, *cross)
        return logits.float().cpu().numpy(), present

    def select(self, cache: list, rows: np.ndarray) -> list:
        import torch

        index = torch.from_numpy(np.asarray(rows)).to(self._device)
        return [c.index_select(0, index) for c in cache]

    def generate(self, features: np.ndarray, prompts: list[list[int]],
                 options: DecodingOptions) -> list[list[int]]:
        return generate(self, features, prompts, options, self._rules)

    def detect_language(self, features: np.ndarray) -> list[str]:
        return detect_language(self, features, self._spec.get("languages"), self.model_dir)

    def close(self) -> None:
        self._encoder = self._decoder = None
