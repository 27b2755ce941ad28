"""ONNX Runtime: the encoder and decoder-step graphs of an ONNX artifact, driven by the
shared decoding loop. Execution providers: CPU, CUDA, TensorRT (checked before loading)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from runtimes.base import DecodingOptions, RuntimeOptions, WhisperRuntime
from runtimes.decoding import SuppressRules, detect_language, generate, select_rows
from runtimes.errors import ArtifactError, DeviceError, OptionError
from runtimes.registry import register

ENCODER, DECODER, GRAPH_SPEC = "encoder.onnx", "decoder.onnx", "graph.json"
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
    if options.threads:
        so.intra_op_num_threads = options.threads
    try:
        return ort.InferenceSession(str(path), so, providers=providers)
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types
        raise ArtifactError(f"ONNX Runtime cannot load {path}: {exc}") from exc


@register
class OnnxRuntime(WhisperRuntime):
    """Whisper as two ONNX graphs (see exporters.families.whisper)."""

    format = "onnx"

    def __init__(self, model_dir: Path, options: RuntimeOptions) -> None:
        super().__init__(model_dir, options)
        spec_path = self.model_dir / GRAPH_SPEC
        if not spec_path.is_file():
            raise ArtifactError(f"{model_dir} has no {GRAPH_SPEC}")
        self._spec = json.loads(spec_path.read_text())
        self._precision = self._spec["precision"]
        if options.precision not in (None, self._precision):
            raise OptionError(
                f"this ONNX artifact computes in {self._precision}; precision "
                f"{options.precision!r} needs its own export (--to onnx with that precision)")
        self._rules = SuppressRules.load(self.model_dir)
        fp16 = self._precision == "fp16"
        self._encoder = _session(self.model_dir / ENCODER, options, fp16)
        self._decoder = _session(self.model_dir / DECODER, options, fp16)
        self._cross_names = [o.name for o in self._encoder.get_outputs()][1:]
        self._past_names = [i.name for i in self._decoder.get_inputs() if i.name.startswith("past")]

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
        return self._precision

    def encode(self, features: np.ndarray) -> np.ndarray:
        return self._encoder.run(["encoder_output"], {"input_features": features})[0]

    def cross_cache(self, features: np.ndarray) -> dict[str, np.ndarray]:
        outputs = self._encoder.run(self._cross_names, {"input_features": features})
        return dict(zip(self._cross_names, outputs))

    def empty_cache(self, batch: int) -> list[np.ndarray]:
        shape = (batch, self._spec["n_heads"], 0, self._spec["d_model"] // self._spec["n_heads"])
        return [np.zeros(shape, np.float32) for _ in self._past_names]

    def decode_step(self, tokens, cache, cross):
        feeds = {"input_ids": tokens, **dict(zip(self._past_names, cache)), **cross}
        logits, *present = self._decoder.run(None, feeds)
        return logits, present

    def select(self, cache, rows: np.ndarray):
        return select_rows(cache, rows)

    def generate(self, features: np.ndarray, prompts: list[list[int]],
                 options: DecodingOptions) -> list[list[int]]:
        return generate(self, features, prompts, options, self._rules)

    def detect_language(self, features: np.ndarray) -> list[str]:
        return detect_language(self, features, self._spec.get("languages"), self.model_dir)

    def close(self) -> None:
        self._encoder = self._decoder = None
