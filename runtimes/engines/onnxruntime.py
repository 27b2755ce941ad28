"""ONNX Runtime: the encoder and decoder-step graphs of an ONNX artifact, driven by the
shared decoding loop. Execution providers: CPU, CUDA, TensorRT (checked before loading)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from runtimes.base import RuntimeOptions
from runtimes.decoding import select_rows
from runtimes.errors import ArtifactError, DeviceError
from runtimes.graph import GraphRuntime
from runtimes.registry import register


def _providers(options: RuntimeOptions, fp16: bool) -> list:
    """Execution providers in priority order, with their options."""
    if options.device == "cpu":
        return ["CPUExecutionProvider"]
    providers: list = [("CUDAExecutionProvider", {}), "CPUExecutionProvider"]
    if options.provider == "tensorrt":
        cache = str(Path(options.cache_dir or "trt-cache").expanduser())
        providers.insert(0, ("TensorrtExecutionProvider", {
            "trt_engine_cache_enable": True, "trt_engine_cache_path": cache,
            "trt_timing_cache_enable": True, "trt_timing_cache_path": cache,
            "trt_fp16_enable": fp16,
        }))
    return providers


def _session(path: Path, options: RuntimeOptions, fp16: bool = False):
    import onnxruntime as ort

    available = ort.get_available_providers()
    providers = _providers(options, fp16)
    wanted = providers[0] if isinstance(providers[0], str) else providers[0][0]
    if wanted not in available:
        raise DeviceError(
            f"device {options.device!r} needs {wanted}, which this onnxruntime lacks "
            f"(available: {', '.join(available)}); install onnxruntime-gpu on a CUDA machine")
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if options.shared_cores:
        # Spinning intra-op threads keep the cores between calls; the server's request
        # threads need them (load test: unbatched 33 -> 41 audio s/s with this off).
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if options.threads:
        so.intra_op_num_threads = options.threads
    if options.profile:
        import tempfile

        so.enable_profiling = True
        so.profile_file_prefix = str(Path(tempfile.mkdtemp(prefix="ort-profile-")) / path.stem)
    try:
        return ort.InferenceSession(str(path), so, providers=providers)
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types
        raise ArtifactError(f"ONNX Runtime cannot load {path}: {exc}") from exc


@register
class OnnxRuntime(GraphRuntime):
    """Whisper as two ONNX graphs (see exporters.families.whisper)."""

    format = "onnx"
    graph_files = ("encoder.onnx", "decoder.onnx")

    def __init__(self, model_dir: Path, options: RuntimeOptions) -> None:
        super().__init__(model_dir, options)
        self._check_precision(options.precision)
        fp16 = self.precision == "fp16"
        encoder, decoder = (self.model_dir / f for f in self.graph_files)
        self._encoder = _session(encoder, options, fp16)
        self._decoder = _session(decoder, options, fp16)
        self.encoder_batch = 2 if options.device == "cpu" else 0  # measured: see decoding.py
        self._cross_names = [o.name for o in self._encoder.get_outputs()][1:]
        self._past_names = [i.name for i in self._decoder.get_inputs() if i.name.startswith("past")]

    def encode(self, features: np.ndarray) -> np.ndarray:
        return self._encoder.run(["encoder_output"], {"input_features": features})[0]

    def cross_cache(self, features: np.ndarray) -> dict[str, np.ndarray]:
        outputs = self._encoder.run(self._cross_names, {"input_features": features})
        return dict(zip(self._cross_names, outputs))

    def empty_cache(self, batch: int) -> list[np.ndarray]:
        return [np.zeros(self._cache_shape(batch), np.float32) for _ in self._past_names]

    def decode_step(self, tokens, cache, cross, lengths=None):
        feeds = {"input_ids": tokens, **dict(zip(self._past_names, cache)), **cross}
        if (lengths := self._lengths(tokens, cache, lengths)) is not None:
            feeds["cache_lengths"] = lengths
        logits, *present = self._decoder.run(None, feeds)
        return logits, present

    def select(self, cache, rows: np.ndarray):
        return select_rows(cache, rows)

    def operator_profile(self) -> list[tuple[str, float, int]]:
        """Kernel times by operator type from ONNX Runtime's profiler (both graphs)."""
        import json

        if not self.options.profile:
            return super().operator_profile()
        totals: dict[str, list[float]] = {}
        for session in (self._encoder, self._decoder):
            events = json.loads(Path(session.end_profiling()).read_text())
            for event in events:
                if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
                    entry = totals.setdefault(event["args"]["op_name"], [0.0, 0])
                    entry[0] += event["dur"] / 1000
                    entry[1] += 1
        return [(op, ms, int(n)) for op, (ms, n) in totals.items()]

    def close(self) -> None:
        self._encoder = self._decoder = None
