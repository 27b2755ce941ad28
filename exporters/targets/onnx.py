"""ONNX target: the encoder and one decoder-step graph (exporters.families.whisper),
exported with torch.onnx, optionally quantised with ONNX Runtime's tools.

Precisions: fp32; int8 (dynamic int8 MatMul and embedding, per-channel where a weight is
not shared; each clip's activations scaled on their own, ``exporters.onnx_per_clip``,
unless ``--int8-activations batch``); int4 (weight-only MatMulNBits, block 32, symmetric); fp16 for
CUDA only.
"""

from __future__ import annotations

from pathlib import Path

from exporters.options import ExportOptions
from exporters.registry import register
from exporters.sources import Source
from exporters.targets.base import Target
from exporters.validate import ParityTolerance
from runtimes.errors import DeviceError, OptionError

PRECISIONS = ("fp32", "fp16", "int8", "int4")
OPSET = 17
EMBEDDING = "embed"  # name of the shared embedding parameter in DecoderStepGraph
_2GB = 2 * 1024**3


def _needs_external_data(path: Path) -> bool:
    """Whether a graph's weights approach protobuf's 2 GB limit (large-v3 in fp32 does)."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    total = 0
    for tensor in graph.initializer:
        external = {e.key: e.value for e in tensor.external_data}
        total += int(external.get("length", 0)) or len(tensor.raw_data)
    return total > _2GB * 0.9


def _quantize_int8(path: Path, kernels: str, nodes: list[str] | None = None) -> None:
    """Dynamic int8 (u8 activations x s8 per-channel weights).

    For ``kernels`` "avx2" the weights use 7 bits (ONNX Runtime's ``reduce_range``): without
    VNNI, MLAS multiplies u8 x s8 pairs with vpmaddubsw, whose 16-bit sum saturates at full
    range. Measured on real tiny.en's encoder under AVX2 emulation (qemu -cpu EPYC-Milan):
    relative error 0.22 full-range vs 0.08 reduced; with VNNI, reduced range costs 0.6 WER
    points on `en` (5.10 -> 5.73), so it is not used there.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = path.with_suffix(".int8.onnx")
    quantize_dynamic(str(path), str(tmp), weight_type=QuantType.QInt8, per_channel=True,
                     reduce_range=kernels == "avx2",
                     op_types_to_quantize=["MatMul", "Gather"], nodes_to_quantize=nodes,
                     use_external_data_format=_needs_external_data(path))
    tmp.replace(path)


def _embedding_nodes(path: Path) -> list[str]:
    """Nodes reading the shared (d_model, vocab) embedding: its lookup and the projection."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return [n.name for n in graph.node if EMBEDDING in n.input]


def _quantize_int4(path: Path, kernels: str) -> None:
    """4-bit weight-only MatMulNBits (block 32, symmetric) for every MatMul but the one that
    shares its weight with the embedding lookup: those two get one shared int8 matrix, so
    the vocabulary weights are stored once (MatMulNBits cannot share a weight with Gather)."""
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    shared = _embedding_nodes(path)
    quantizer = MatMulNBitsQuantizer(str(path), bits=4, block_size=32, is_symmetric=True,
                                     nodes_to_exclude=shared)
    quantizer.process()
    onnx.save_model(quantizer.model.model, str(path))
    if shared:
        _quantize_int8(path, kernels, shared)


def _to_fp16(path: Path, kernels: str) -> None:
    """fp16 weights and compute; the caches between the graphs are fp16 too (half the bytes
    the GPU moves per step, no casts of the cross caches at every step), while the log-mel
    input and the logits stay float32 for the shared pre-processing and decoding loop."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(str(path)),
                                     keep_io_types=["input_features", "logits"])
    onnx.save_model(model, str(path))


def _ranks(path: Path) -> dict[str, int]:
    """The float graph's tensor ranks (``exporters.onnx_per_clip.tensor_ranks``)."""
    import onnx

    from exporters.onnx_per_clip import tensor_ranks

    return tensor_ranks(onnx.load(str(path), load_external_data=False))


def _scale_per_clip(path: Path, ranks: dict[str, int]) -> None:
    """Dynamic int8 that scales each clip on its own (``exporters.onnx_per_clip``): the
    encoder runs one clip at a time, with ONNX Runtime's fused kernels unchanged; the
    decoder's activations get a scale per clip (during decoding steps, one per token). A
    graph without dynamic quantisation (int4's encoder) is left as it is."""
    import onnx

    from exporters.onnx_per_clip import per_clip, per_item

    model = onnx.load(str(path))
    if not any(n.op_type == "DynamicQuantizeLinear" for n in model.graph.node):
        return
    if path.name == "encoder.onnx":
        model = per_clip(model)
    else:
        per_item(model, ranks)
    onnx.save_model(model, str(path), save_as_external_data=_needs_external_data(path))


_CONVERT = {"int8": _quantize_int8, "int4": _quantize_int4, "fp16": _to_fp16}


@register
class OnnxTarget(Target):
    name = "onnx"
    format = "onnx"
    aligns = True

    def precision(self, requested: str | None, device: str) -> str:
        return self._one_of(requested, PRECISIONS, "--fp16, --int8, --int4")

    def offered(self, device: str) -> list[str]:
        return ["fp32", "int8", "int4"] + (["fp16"] if device == "cuda" else [])

    def check(self, options: ExportOptions, precision: str) -> None:
        import importlib.util

        for module, package in (("onnx", "onnx"), ("onnxruntime", "onnxruntime")):
            if importlib.util.find_spec(module) is None:
                raise OptionError(f"the onnx target needs `pip install {package}` (extra: onnx)")
        if precision == "int4" and importlib.util.find_spec("onnx_ir") is None:
            raise OptionError("--int4 for onnx needs `pip install onnx-ir` (extra: onnx)")
        if precision == "fp16" and options.device == "cpu":
            raise OptionError("onnx fp16 runs on cuda only (ONNX Runtime's CPU kernels are "
                              "fp32); on cpu use fp32, --int8 or --int4")
        if options.device == "cuda":
            import onnxruntime

            if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
                raise DeviceError("device 'cuda' needs onnxruntime-gpu and a CUDA GPU; "
                                  "neither is available here")

    def convert(self, source: Source, out_dir: Path, precision: str,
                options: ExportOptions) -> list[Path]:
        from exporters.families.whisper import export_alignment, export_onnx, load_model, write_graph_files

        model = load_model(source.hf_dir)
        spec = export_onnx(model, out_dir, OPSET)
        if precision in _CONVERT:
            kernels = options.resolved_int8_kernels()
            per_clip = self.scales_activations(precision) and options.int8_activations == "clip"
            for graph in ("encoder.onnx", "decoder.onnx"):
                ranks = _ranks(out_dir / graph) if per_clip else {}
                _CONVERT[precision](out_dir / graph, kernels)
                if per_clip:
                    _scale_per_clip(out_dir / graph, ranks)
        if options.word_timestamps:
            export_alignment(model, source.hf_dir, out_dir, OPSET)
        # Transformer fusions are applied by ONNX Runtime when a session loads
        # (ORT_ENABLE_ALL, 0.2 s for tiny.en), not stored offline: an offline-optimised graph
        # is tied to one machine's providers.
        write_graph_files(spec, source.hf_dir, out_dir, precision, opset=OPSET,
                          graph_optimization="ORT_ENABLE_ALL at load")
        return sorted(p for p in out_dir.iterdir() if p.is_file())

    def tunes_int8(self, precision: str) -> bool:
        return precision in ("int8", "int4")  # int4 keeps the vocabulary matrix int8

    def batch_invariant(self, precision: str, options: ExportOptions) -> bool:
        # ONNX Runtime's dynamic int8 quantises each MatMul's input with one scale for the
        # whole batch, so a window's neighbours change its rounding: 18 of 56 en clips of
        # tiny.en decoded differently alone and in batches of 8. Scaled per clip, a clip's
        # arithmetic is its own (exporters.onnx_per_clip). int4 keeps the vocabulary
        # projection dynamic int8.
        return not self.scales_activations(precision) or options.int8_activations == "clip"

    def scales_activations(self, precision: str) -> bool:
        return precision in ("int8", "int4")

    def tolerance(self, precision: str) -> ParityTolerance:
        # Measured encoder errors on JFK, with VNNI / AVX2 only (qemu -cpu EPYC-Milan): real
        # tiny.en int8 0.072 / 0.079 (0.22 if its weights are not tuned for AVX2, see
        # _quantize_int8), int4 0.18; the random test model int8 0.015 / 0.021 (0.18
        # untuned), int4 0.17 / 0.17. Unrelated outputs of equal norm differ by ~1.4.
        if precision == "int8":
            return ParityTolerance(encoder_rel_error=0.3, token_agreement=0.0)
        if precision == "int4":
            return ParityTolerance(encoder_rel_error=0.4, token_agreement=0.0)
        if precision == "fp16":
            return ParityTolerance(encoder_rel_error=0.03, token_agreement=0.5)
        return ParityTolerance(encoder_rel_error=1e-3, token_agreement=0.9)

    def runtime_packages(self, device: str) -> tuple[str, ...]:
        return ("onnxruntime-gpu",) if device == "cuda" else ("onnxruntime",)

    def versions(self) -> dict[str, str]:
        import onnx
        import onnxruntime

        return {"onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__}
