"""OpenVINO runtime: the IR encoder and decoder-step graphs on an OpenVINO device (CPU
here), driven by the shared decoding loop.

The inference precision is OpenVINO's hint: bf16 by default on CPUs with bf16 support,
f32 otherwise; ``precision="fp32"`` or ``"bf16"`` forces it. The runtime reports
"<weights>/<inference>", e.g. "int8/bf16", so tables say which one ran.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from runtimes.base import RuntimeOptions
from runtimes.decode.loops import select_rows
from runtimes.engines.graph import GraphRuntime
from runtimes.engines.registry import register
from runtimes.errors import ArtifactError, DeviceError
from runtimes.precision import canonical

#: Inference precisions a caller may force, in the toolkit's names and OpenVINO's.
HINTS = {"fp32": "f32", "bf16": "bf16"}


@register
class OpenVINORuntime(GraphRuntime):
    """Whisper as two OpenVINO IR models (see exporters.families.whisper)."""

    format = "openvino"
    graph_files = ("encoder.xml", "decoder.xml")
    exports_alignment = True

    def __init__(self, model_dir: Path, options: RuntimeOptions) -> None:
        super().__init__(model_dir, options)
        import openvino as ov

        self._check_precision(options.precision, *HINTS)
        core = ov.Core()
        device = "CPU" if options.device == "cpu" else "GPU"
        if device not in core.available_devices:
            raise DeviceError(f"OpenVINO sees no {device} device here "
                              f"(available: {', '.join(core.available_devices)})")
        config = {}
        if options.threads:
            config["INFERENCE_NUM_THREADS"] = options.threads
        if options.precision in HINTS:
            config["INFERENCE_PRECISION_HINT"] = HINTS[options.precision]
        if options.profile:
            config["PERF_COUNT"] = True
        hint = (HINTS.get(options.precision)
                or core.get_property(device, "INFERENCE_PRECISION_HINT").to_string())
        #: Cross-attention keys/values travel between the graphs as raw bf16 (uint16 arrays)
        #: when inference runs in bf16 anyway. At f32 they are the decoder's largest input,
        #: 18 MB per window per step for tiny.en, read again at every step.
        self._bf16_cross = hint == "bf16"
        models = [self._read(core, name) for name in self.graph_files]
        if self._bf16_cross:
            models = _bf16_cross(*models)
        self._encoder = self._compile(core, models[0], self.graph_files[0], device, config)
        self._decoder = self._compile(core, models[1], self.graph_files[1], device,
                                      {**config, **_decoder_config(device, hint)})
        self._hint = self._encoder.get_property("INFERENCE_PRECISION_HINT").to_string()
        self.encoder_batch = 2 if device == "CPU" else 0  # measured: see decoding.py
        # One infer request per graph, reused: its outputs are read in place (share_outputs)
        # and copied once, and with profiling on its counters are read after every call.
        self._requests = {id(m): m.create_infer_request() for m in (self._encoder, self._decoder)}
        self._perf: dict[str, list[float]] = {}
        self._past = [p.get_any_name() for p in self._decoder.inputs
                      if p.get_any_name().startswith("past")]
        self._cross = [p.get_any_name() for p in self._encoder.outputs][1:]
        self._aligner = None  # alignment.xml, exported with --word-timestamps
        if (self.model_dir / "alignment.xml").is_file():
            self._aligner = self._compile(core, self._read(core, "alignment.xml"),
                                          "alignment.xml", device,
                                          {**config, "INFERENCE_PRECISION_HINT": "f32"})
            self._requests[id(self._aligner)] = self._aligner.create_infer_request()

    @property
    def aligns(self) -> bool:
        return self._aligner is not None

    def alignment_pass(self, tokens: np.ndarray, cross) -> tuple[np.ndarray, np.ndarray]:
        """The alignment graph in f32 on the cross K/V (raw bf16 bits widened)."""
        feeds = {name: (value.astype(np.uint32) << 16).view(np.float32)
                 if value.dtype == np.uint16 else value for name, value in cross.items()}
        result = self._infer(self._aligner, {"input_ids": tokens, **feeds})
        return result["logits"].copy(), result["attention"].copy()

    def _read(self, core, name: str):
        path = self.model_dir / name
        try:
            return core.read_model(str(path))
        except RuntimeError as exc:
            raise ArtifactError(f"OpenVINO cannot read {path}: {exc}") from exc

    def _compile(self, core, model, name: str, device: str, config: dict):
        try:
            return core.compile_model(model, device, config)
        except RuntimeError as exc:
            raise ArtifactError(f"OpenVINO cannot load {self.model_dir / name}: {exc}") from exc

    @property
    def precision(self) -> str:
        # weights / inference, e.g. int8/bf16, in the toolkit's names (OpenVINO says f32)
        return f"{self._spec.precision}/{canonical(self._hint)}"

    def encode(self, features: np.ndarray) -> np.ndarray:
        return self._infer(self._encoder, {"input_features": features})["encoder_output"].copy()

    def cross_cache(self, features: np.ndarray) -> dict[str, np.ndarray]:
        result = self._infer(self._encoder, {"input_features": features})
        if self._bf16_cross:  # raw bf16 bits: numpy has no bf16, but rows copy bit-exactly
            return {name: result[name].view(np.uint16).copy() for name in self._cross}
        return {name: result[name].copy() for name in self._cross}

    def empty_cache(self, batch: int) -> list[np.ndarray]:
        return [np.zeros(shape, np.float32) for shape in self._cache_shapes(batch)]

    def decode_step(self, tokens, cache, cross, lengths=None):
        if self._bf16_cross:
            import openvino as ov

            cross = {name: ov.Tensor(np.ascontiguousarray(value), value.shape, ov.Type.bf16)
                     for name, value in cross.items()}
        feeds = {"input_ids": tokens, **dict(zip(self._past, cache)), **cross}
        if (lengths := self._lengths(tokens, cache, lengths)) is not None:
            feeds["cache_lengths"] = lengths
        result = self._infer(self._decoder, feeds)
        present = [result[name.replace("past", "present")].copy() for name in self._past]
        return result["logits"].copy(), present

    def select(self, cache, rows: np.ndarray):
        return select_rows(cache, rows)

    def _infer(self, compiled, inputs: dict):
        """Outputs by name, valid until the next call on the same graph (copy what you keep)."""
        request = self._requests[id(compiled)]
        result = request.infer(inputs, share_inputs=True, share_outputs=True)
        if not self.options.profile:
            return result
        for info in request.get_profiling_info():
            if info.status == info.Status.EXECUTED:
                entry = self._perf.setdefault(info.node_type, [0.0, 0])
                entry[0] += info.real_time.total_seconds() * 1000
                entry[1] += 1
        return result

    def operator_profile(self) -> list[tuple[str, float, int]]:
        """Execution time by node type from OpenVINO's performance counters."""
        if not self.options.profile:
            return super().operator_profile()
        return [(op, ms, int(n)) for op, (ms, n) in self._perf.items()]

    def close(self) -> None:
        self._encoder = self._decoder = self._aligner = None


def _decoder_config(device: str, hint: str) -> dict:
    """The decoder step without OpenVINO's snippets (its JIT-fused attention subgraphs) on
    a CPU computing in f32.

    Why: there, a step attends from one token to 1500 encoder frames, a shape the fused
    kernel handles badly: on an AVX2-only CPU, tiny.en int8 decoder steps took 7.0 -> 5.7
    ms at batch 1 and 36 -> 18 ms at batch 8 with it off (same logits to 2e-5), while the
    encoder's 1500 x 1500 attention is faster with it (389 against 402 ms), so only the
    decoder drops it. Whole pipeline, two alternating rounds of `python -m bench`: long
    recordings at batch 8 27.9 / 33.0 -> 35.0 / 34.1 RTFx, `en` unchanged within noise
    (the encoder dominates there), WER identical. bf16 CPUs keep the default: not measured
    there.
    """
    return {"SNIPPETS_MODE": "DISABLE"} if device == "CPU" and hint == "f32" else {}


def _bf16_cross(encoder, decoder):
    """The encoder's cross-attention outputs and the decoder's matching inputs declared bf16.

    Why: in bf16 inference the decoder computes attention in bf16 anyway, but an f32 input
    is read (and converted) in full at every step. Halving it made a batch-8 decoder step
    of tiny.en int8_static 1.6x faster here (16 -> 10 ms; batch 1: 5.4 -> 4.6 ms).
    """
    import openvino as ov

    names = [p.get_any_name() for p in encoder.outputs][1:]
    pre = ov.preprocess.PrePostProcessor(encoder)
    for name in names:
        pre.output(name).tensor().set_element_type(ov.Type.bf16)
    encoder = pre.build()
    pre = ov.preprocess.PrePostProcessor(decoder)
    for name in names:
        pre.input(name).tensor().set_element_type(ov.Type.bf16)
    return encoder, pre.build()
