"""TorchScript target: the encoder and decoder-step graphs traced with ``torch.jit.trace``,
loadable with ``torch.jit.load`` alone (no transformers needed at run time)."""

from __future__ import annotations

import warnings
from pathlib import Path

from exporters.options import ExportOptions
from exporters.registry import register
from exporters.sources import Source
from exporters.targets.base import Target
from exporters.validate import ParityTolerance
from runtimes.errors import DeviceError

PRECISIONS = ("fp32", "fp16")


@register
class TorchScriptTarget(Target):
    name = "torchscript"
    format = "torchscript"
    aligns = True

    def precision(self, requested: str | None, device: str) -> str:
        return self._one_of(requested, PRECISIONS, "fp16 on cuda")

    def offered(self, device: str) -> list[str]:
        """fp16 traces and runs on the CPU too (torch's half kernels: CI traces the CUDA
        form's dtype there), but is not offered there: it is the GPU's precision."""
        return ["fp32"] + (["fp16"] if device == "cuda" else [])

    def check(self, options: ExportOptions, precision: str) -> None:
        import torch

        if options.device == "cuda" and not torch.cuda.is_available():
            raise DeviceError("device 'cuda' was requested but PyTorch sees no CUDA GPU")

    def convert(self, source: Source, out_dir: Path, precision: str,
                options: ExportOptions) -> list[Path]:
        import torch

        from exporters.families.whisper import (
            AlignmentGraph,
            DecoderStepGraph,
            EncoderGraph,
            alignment_heads,
            dummy_inputs,
            load_model,
            spec_of,
            write_graph_files,
        )

        # A trace records tensors made inside forward (positions, masks) with the device and
        # dtype they had, so it is made on the device and in the dtype it will run with: a
        # CPU trace run on CUDA failed with "index is on cpu" (H200, first GPU run).
        device = torch.device(options.device)
        dtype = torch.float16 if precision == "fp16" else torch.float32
        model = load_model(source.hf_dir).to(device, dtype)
        spec = spec_of(model)
        features, step_inputs = dummy_inputs(spec)
        features = features.to(device, dtype)
        step_inputs = tuple(x.to(device) if x.dtype == torch.long else x.to(device, dtype)
                            for x in step_inputs)
        with warnings.catch_warnings(), torch.no_grad():
            # Tracer notes about shape arithmetic, and torch 2.13's deprecation of TorchScript
            # in favour of torch.export: the format is what this target promises.
            warnings.simplefilter("ignore")
            encoder = torch.jit.trace(EncoderGraph(model).eval(), (features,))
            decoder = torch.jit.trace(DecoderStepGraph(model).eval(), step_inputs)
            torch.jit.save(encoder, str(out_dir / "encoder.pt"))
            torch.jit.save(decoder, str(out_dir / "decoder.pt"))
            if options.word_timestamps:
                # fp32 whatever the precision (as the ONNX target's alignment graph):
                # attention weights steer the word times and the pass runs once per window.
                heads = alignment_heads(source.hf_dir)
                fp32 = load_model(source.hf_dir).to(device, torch.float32)
                ids, cross = step_inputs[0], step_inputs[1 + 2 * spec.n_layers:
                                                          1 + 4 * spec.n_layers]
                aligner = torch.jit.trace(AlignmentGraph(fp32, heads).eval(),
                                          (ids, *(c.float() for c in cross)))
                torch.jit.save(aligner, str(out_dir / "alignment.pt"))
        write_graph_files(spec, source.hf_dir, out_dir, precision,
                          torch=torch.__version__.split("+")[0], traced_on=options.device)
        return sorted(p for p in out_dir.iterdir() if p.is_file())

    def tolerance(self, precision: str) -> ParityTolerance:
        if precision == "fp16":
            return ParityTolerance(encoder_rel_error=0.03, token_agreement=0.5)
        return ParityTolerance(encoder_rel_error=1e-3, token_agreement=0.9)

    def runtime_packages(self, device: str) -> tuple[str, ...]:
        return ("torch",)

    def versions(self) -> dict[str, str]:
        import torch

        return {"torch": torch.__version__}
