"""OpenVINO runtime: the IR encoder and decoder-step graphs on an OpenVINO device (CPU
here), driven by the shared decoding loop.

The inference precision is OpenVINO's hint: bf16 by default on CPUs with bf16 support,
f32 otherwise; ``precision="f32"`` or ``"bf16"`` forces it. The runtime reports
"<weights>/<inference>", e.g. "int8/bf16", so tables say which one ran.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from runtimes.base import DecodingOptions, RuntimeOptions, WhisperRuntime
from runtimes.decoding import SuppressRules, detect_language, generate, select_rows
from runtimes.errors import ArtifactError, DeviceError, OptionError
from runtimes.registry import register

GRAPH_SPEC = "graph.json"
HINTS = ("f32", "bf16")


@register
class OpenVINORuntime(WhisperRuntime):
    """Whisper as two OpenVINO IR models (see exporters.families.whisper)."""

    format = "openvino"

    def __init__(self, model_dir: Path, options: RuntimeOptions) -> None:
        super().__init__(model_dir, options)
        import openvino as ov

        if options.provider is not None:
            raise OptionError(f"provider {options.provider!r} applies to ONNX artifacts only")
        self._spec = json.loads((self.model_dir / GRAPH_SPEC).read_text())
        core = ov.Core()
        device = "CPU" if options.device == "cpu" else "GPU"
        if device not in core.available_devices:
            raise DeviceError(f"OpenVINO sees no {device} device here "
                              f"(available: {', '.join(core.available_devices)})")
        config = {}
        if options.threads:
            config["INFERENCE_NUM_THREADS"] = options.threads
        if options.precision not in (None, self._spec["precision"]):
            if options.precision not in HINTS:
                raise OptionError(f"OpenVINO inference precision {options.precision!r} is "
                                  f"not one of: {', '.join(HINTS)}")
            config["INFERENCE_PRECISION_HINT"] = options.precision
        self._rules = SuppressRules.load(self.model_dir)
        self._encoder = self._compile(core, "encoder.xml", device, config)
        self._decoder = self._compile(core, "decoder.xml", device, config)
        hint = self._encoder.get_property("INFERENCE_PRECISION_HINT")
        self._hint = hint.to_string()  # "bf16" or "f32"
        self._past = [p.get_any_name() for p in self._decoder.inputs
                      if p.get_any_name().startswith("past")]
        self._cross = [p.get_any_name() for p in self._encoder.outputs][1:]

    def _compile(self, core, name: str, device: str, config: dict):
        path = self.model_dir / name
        try:
            return core.compile_model(str(path), device, config)
        except RuntimeError as exc:
            raise ArtifactError(f"OpenVINO cannot load {path}: {exc}") from exc

    @classmethod
    def sniff(cls, model_dir: Path) -> bool:
        return all((Path(model_dir) / f).is_file()
                   for f in ("encoder.xml", "decoder.xml", GRAPH_SPEC))

    @property
    def multilingual(self) -> bool:
        return self._spec["vocab_size"] >= 51865

    @property
    def n_mels(self) -> int:
        return int(self._spec["n_mels"])

    @property
    def precision(self) -> str:
        return f"{self._spec['precision']}/{self._hint}"

    def encode(self, features: np.ndarray) -> np.ndarray:
        return self._encoder({"input_features": features})["encoder_output"].copy()

    def cross_cache(self, features: np.ndarray) -> dict[str, np.ndarray]:
        result = self._encoder({"input_features": features})
        return {name: result[name].copy() for name in self._cross}

    def empty_cache(self, batch: int) -> list[np.ndarray]:
        heads, d = self._spec["n_heads"], self._spec["d_model"]
        return [np.zeros((batch, heads, 0, d // heads), np.float32) for _ in self._past]

    def decode_step(self, tokens, cache, cross):
        result = self._decoder({"input_ids": tokens, **dict(zip(self._past, cache)), **cross})
        present = [result[name.replace("past", "present")].copy() for name in self._past]
        return result["logits"].copy(), present

    def select(self, cache, rows: np.ndarray):
        return select_rows(cache, rows)

    def generate(self, features: np.ndarray, prompts: list[list[int]],
                 options: DecodingOptions) -> list[list[int]]:
        return generate(self, features, prompts, options, self._rules)

    def detect_language(self, features: np.ndarray) -> list[str]:
        return detect_language(self, features, self._spec.get("languages"), self.model_dir)

    def close(self) -> None:
        self._encoder = self._decoder = None
