"""TensorRT target: engines built from the toolkit's ONNX graphs with the TensorRT Python API
(TensorRT 10/11): one optimisation profile over batch, tokens and cache length, FP16 on
request, a timing cache reused across builds. An engine is specific to one GPU model and
TensorRT version, so both are recorded and checked at load time.

INT8 is not offered: TensorRT 10+ needs explicitly quantised (Q/DQ) graphs for it, which
this toolkit does not produce yet; asking for it gives a clear error.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from exporters.options import ExportOptions
from exporters.registry import register
from exporters.sources import Source
from exporters.targets.base import Target
from exporters.validate import ParityTolerance
from runtimes.engines.tensorrt import gpu_identity
from runtimes.errors import DeviceError, OptionError

PRECISIONS = ("fp32", "fp16")
MAX_BATCH = 32  # beams x inputs per decoder call (the bench's largest GPU batch)
MAX_PROMPT = 8
MAX_CONTEXT = 448  # Whisper's decoder positions


def _profile(builder, network, spec, graph: str):
    """Shapes from one token to a full prompt, from an empty to a full cache; the alignment
    graph (``graph`` "alignment") takes a whole window's tokens at once."""
    profile = builder.create_optimization_profile()
    for i in range(network.num_inputs):
        name = network.get_input(i).name
        if graph == "encoder":
            dims = [(1, spec.n_mels, spec.n_frames), (4, spec.n_mels, spec.n_frames),
                    (MAX_BATCH, spec.n_mels, spec.n_frames)]
        elif name == "input_ids" and graph == "alignment":
            dims = [(1, 1), (4, 64), (MAX_BATCH, MAX_CONTEXT)]
        elif name == "input_ids":
            dims = [(1, 1), (4, 1), (MAX_BATCH, MAX_PROMPT)]
        elif name == "cache_lengths":
            dims = [(1,), (4,), (MAX_BATCH,)]
        elif name.startswith("past"):
            dims = [spec.kv_shape(name, 1, 0), spec.kv_shape(name, 4, 64),
                    spec.kv_shape(name, MAX_BATCH, MAX_CONTEXT)]
        else:  # cross-attention keys/values
            dims = [spec.kv_shape(name, b, spec.n_audio_ctx) for b in (1, 4, MAX_BATCH)]
        profile.set_shape(name, *dims)
    return profile


def build_engine(onnx_path: Path, plan_path: Path, spec, fp16: bool, cache_path: Path) -> None:
    """Parse ``onnx_path``, build a serialised engine into ``plan_path``."""
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise OptionError(f"TensorRT cannot parse {onnx_path.name}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, 4 << 30)
    if fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    cache = config.create_timing_cache(cache_path.read_bytes() if cache_path.is_file() else b"")
    config.set_timing_cache(cache, ignore_mismatch=False)
    config.add_optimization_profile(_profile(builder, network, spec, onnx_path.stem))
    engine = builder.build_serialized_network(network, config)
    if engine is None:
        raise OptionError(f"TensorRT failed to build an engine from {onnx_path.name}")
    plan_path.write_bytes(bytes(engine))
    cache_path.write_bytes(bytes(config.get_timing_cache().serialize()))


@register
class TensorRTTarget(Target):
    name = "tensorrt"
    format = "tensorrt"
    aligns = True  # alignment.plan, built from alignment.onnx (fp32) with --word-timestamps

    def precision(self, requested: str | None, device: str) -> str:
        if requested == "int8":
            raise OptionError("tensorrt int8 needs an explicitly quantised (Q/DQ) graph, which "
                              "this toolkit does not produce yet; use fp32 or --fp16")
        return self._one_of(requested, PRECISIONS)

    def offered(self, device: str) -> list[str]:
        return list(PRECISIONS) if device == "cuda" else []

    def check(self, options: ExportOptions, precision: str) -> None:
        import importlib.util

        if options.device != "cuda":
            raise DeviceError("the tensorrt target builds engines for an NVIDIA GPU: pass "
                              "--device cuda on a machine that has one")
        if importlib.util.find_spec("tensorrt") is None:
            raise OptionError("the tensorrt target needs `pip install tensorrt` (extra: gpu)")
        import torch

        if not torch.cuda.is_available():
            raise DeviceError("the tensorrt target needs an NVIDIA GPU; PyTorch sees none")

    def convert(self, source: Source, out_dir: Path, precision: str,
                options: ExportOptions) -> list[Path]:
        from exporters.families.whisper import (
            export_alignment,
            export_onnx,
            load_model,
            write_graph_files,
        )

        model = load_model(source.hf_dir)
        with tempfile.TemporaryDirectory(prefix="onnx-", dir=out_dir.parent) as tmp:
            spec = export_onnx(model, Path(tmp))
            cache = Path(tmp) / "timing.cache"
            for graph in ("encoder", "decoder"):
                build_engine(Path(tmp) / f"{graph}.onnx", out_dir / f"{graph}.plan", spec,
                             precision == "fp16", cache)
            if options.word_timestamps:  # fp32, as the ONNX target's alignment graph
                export_alignment(model, source.hf_dir, Path(tmp))
                build_engine(Path(tmp) / "alignment.onnx", out_dir / "alignment.plan", spec,
                             False, cache)
        write_graph_files(spec, source.hf_dir, out_dir, precision, trt_identity=gpu_identity(),
                          max_batch=MAX_BATCH, max_prompt=MAX_PROMPT)
        return sorted(p for p in out_dir.iterdir() if p.is_file())

    def tolerance(self, precision: str) -> ParityTolerance:
        if precision == "fp16":
            return ParityTolerance(encoder_rel_error=0.03, token_agreement=0.5)
        return ParityTolerance(encoder_rel_error=1e-2, token_agreement=0.9)  # TF32 kernels

    def runtime_packages(self, device: str) -> tuple[str, ...]:
        return ("tensorrt-cu13", "torch")  # torch holds the engine's CUDA buffers

    def versions(self) -> dict[str, str]:
        import tensorrt

        return {"tensorrt": tensorrt.__version__}
