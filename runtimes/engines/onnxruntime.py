"""ONNX Runtime: the encoder and decoder-step graphs of an ONNX artifact, driven by the
shared decoding loop. Execution providers: CPU, CUDA, TensorRT.

On CUDA the caches never leave the GPU: they are torch tensors bound to the sessions with
IO binding (``_TorchIO``), so a decoder step moves only the token ids in and the logits out.
Without it every step copied the cross-attention caches (18 MB per window for tiny.en in
fp32) to the GPU and the grown self-attention caches back, and batching gained nothing: on
an H200, fp16 ran at 73 / 92 / 95 RTFx at batch 1 / 8 / 32.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from runtimes.artifacts.graph_spec import GraphSpec
from runtimes.base import RuntimeOptions
from runtimes.decode.loops import select_rows
from runtimes.engines.graph import GraphRuntime
from runtimes.engines.registry import register
from runtimes.errors import ArtifactError, DeviceError

_NAMES = {"cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider"}
#: What each provider of onnxruntime-gpu 1.31 loads, for the one-line error when it cannot.
_NEEDS = {
    "CUDAExecutionProvider": "CUDA 13 (libcublas.so.13, libcudart.so.13) and cuDNN 9 on the "
                             "library path, e.g. the nvidia/cu13/lib folder of a CUDA 13 torch",
    "TensorrtExecutionProvider": "TensorRT 10 (libnvinfer.so.10, pip install tensorrt-cu13==10.*)",
}


def _providers(options: RuntimeOptions, fp16: bool, stream: int | None) -> list:
    """Execution providers in priority order, with their options. ``stream``: the CUDA
    stream torch uses, so ONNX Runtime's kernels and torch's copies are ordered."""
    if options.device == "cpu":
        return ["CPUExecutionProvider"]
    cuda = {} if stream is None else {"user_compute_stream": str(stream)}
    providers: list = [("CUDAExecutionProvider", cuda), "CPUExecutionProvider"]
    if options.provider == "tensorrt":
        cache = str(Path(options.cache_dir or "trt-cache").expanduser())
        providers.insert(0, ("TensorrtExecutionProvider", {
            "trt_engine_cache_enable": True, "trt_engine_cache_path": cache,
            "trt_timing_cache_enable": True, "trt_timing_cache_path": cache,
            "trt_fp16_enable": fp16,
        }))
    return providers


def _session(path: Path, options: RuntimeOptions, fp16: bool = False, stream: int | None = None):
    import onnxruntime as ort

    available = ort.get_available_providers()
    providers = _providers(options, fp16, stream)
    wanted = providers[0] if isinstance(providers[0], str) else providers[0][0]
    if wanted not in available:
        raise DeviceError(
            f"device {options.device!r} needs {wanted}, which onnxruntime {ort.__version__} "
            f"lacks (available: {', '.join(available)}); install onnxruntime-gpu on a CUDA "
            f"machine (extra: gpu)")
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
        session = ort.InferenceSession(str(path), so, providers=providers)
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types
        raise ArtifactError(f"ONNX Runtime cannot load {path}: {exc}") from exc
    _check_provider(session, wanted, ort.__version__)
    return session


def _check_provider(session, wanted: str, version: str) -> None:
    """A provider that fails to load (a missing CUDA or TensorRT library) makes ONNX Runtime
    print an error and carry on with the next one; here that is an error, not a fallback."""
    ran = session.get_providers()
    if ran[0] != wanted:
        raise DeviceError(
            f"onnxruntime {version} could not start {wanted} (the session fell back to "
            f"{', '.join(ran)}): it needs {_NEEDS.get(wanted, 'its libraries')}")


class _TorchIO:
    """Runs both graphs with IO binding on torch tensors: CUDA's, or the CPU's as its
    stand-in (``RuntimeOptions.io_binding``), which runs the same binding, selection and
    concatenation code where CI has no GPU.

    torch owns the GPU memory: its caching allocator hands back the blocks freed at the
    previous step, so the growing self-attention caches cost no cudaMalloc after the first
    steps, and row selection (finished rows leaving the batch, beams) is a torch gather on
    the GPU. ONNX Runtime runs on torch's current stream (``user_compute_stream``).
    """

    _DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}

    def __init__(self, encoder, decoder, device: str) -> None:
        import torch

        self.torch = torch
        self.device = (torch.device("cuda", torch.cuda.current_device()) if device == "cuda"
                       else torch.device("cpu"))
        self.encoder, self.decoder = encoder, decoder
        self.types = {io.name: self._DTYPES.get(io.type, np.int64)
                      for s in (encoder, decoder) for io in (*s.get_inputs(), *s.get_outputs())}

    def _tensor(self, name: str, shape: tuple[int, ...]):
        dtype = getattr(self.torch, np.dtype(self.types[name]).name)
        return self.torch.empty(shape, dtype=dtype, device=self.device)

    def _bind(self, binding, name: str, value, output: bool = False) -> None:
        if isinstance(value, np.ndarray):
            binding.bind_cpu_input(name, np.ascontiguousarray(value, self.types[name]))
            return
        if value.numel() == 0:  # an empty cache has no buffer to point at
            binding.bind_cpu_input(name, np.zeros(tuple(value.shape), self.types[name]))
            return
        bind = binding.bind_output if output else binding.bind_input
        bind(name, self.device.type, self.device.index or 0, self.types[name],
             tuple(value.shape), value.data_ptr())

    def run(self, session, feeds: dict, outputs: dict) -> dict:
        """Run ``session`` with ``feeds`` (numpy arrays or torch tensors) into the
        pre-allocated ``outputs`` (name -> torch tensor)."""
        binding = session.io_binding()
        for name, value in feeds.items():
            self._bind(binding, name, value)
        for name, tensor in outputs.items():
            self._bind(binding, name, tensor, output=True)
        session.run_with_iobinding(binding)
        return outputs

    def encode(self, features: np.ndarray, names: list[str], spec: GraphSpec) -> dict:
        b, ctx = features.shape[0], spec.n_audio_ctx
        shapes = {"encoder_output": (b, ctx, spec.d_model)}
        shapes.update({n: spec.kv_shape(n, b, ctx) for n in names})
        outputs = {n: self._tensor(n, s) for n, s in shapes.items()}
        return self.run(self.encoder, {"input_features": features}, outputs)

    def step(self, feeds: dict, present_names: list[str], vocab: int):
        cache = feeds[present_names[0].replace("present", "past")]
        b, heads, past, head_dim = cache.shape
        total = past + feeds["input_ids"].shape[1]
        outputs = {"logits": self._tensor("logits", (b, vocab))}
        outputs.update({n: self._tensor(n, (b, heads, total, head_dim)) for n in present_names})
        self.run(self.decoder, feeds, outputs)
        logits = outputs.pop("logits").float().cpu().numpy()  # the only copy back per step
        return logits, [outputs[n] for n in present_names]


@register
class OnnxRuntime(GraphRuntime):
    """Whisper as two ONNX graphs (see exporters.families.whisper)."""

    format = "onnx"
    graph_files = ("encoder.onnx", "decoder.onnx")
    exports_alignment = True

    def __init__(self, model_dir: Path, options: RuntimeOptions) -> None:
        super().__init__(model_dir, options)
        self._check_precision(options.precision)
        fp16 = self.precision == "fp16"
        stream = _torch_stream() if options.device == "cuda" else None
        encoder, decoder = (self.model_dir / f for f in self.graph_files)
        self._encoder = _session(encoder, options, fp16, stream)
        self._decoder = _session(decoder, options, fp16, stream)
        self.encoder_batch = 2 if options.device == "cpu" else 0  # measured: see decoding.py
        self._cross_names = [o.name for o in self._encoder.get_outputs()][1:]
        self._past_names = [i.name for i in self._decoder.get_inputs() if i.name.startswith("past")]
        self._present_names = [n.replace("past", "present") for n in self._past_names]
        bound = options.device == "cuda" if options.io_binding is None else options.io_binding
        self._io = _TorchIO(self._encoder, self._decoder, options.device) if bound else None
        aligner = self.model_dir / "alignment.onnx"  # exported with --word-timestamps
        self._aligner = _session(aligner, options, False, stream) if aligner.is_file() else None

    @property
    def aligns(self) -> bool:
        return self._aligner is not None

    def alignment_pass(self, tokens: np.ndarray, cross) -> tuple[np.ndarray, np.ndarray]:
        """The alignment graph (fp32 whatever the artifact's precision) on the cross K/V."""
        values = cross if isinstance(cross, list) else [cross[n] for n in self._cross_names]
        feeds = {name: _float32(value) for name, value in zip(self._cross_names, values)}
        logits, attention = self._aligner.run(None, {"input_ids": tokens, **feeds})
        return logits, attention

    @property
    def providers(self) -> tuple[str, ...]:
        """The execution providers the sessions run on, first one first."""
        return tuple(self._decoder.get_providers())

    @property
    def backend(self) -> str:
        io = ", IO binding" if self._io is not None else ""
        return f"onnxruntime {', '.join(self.providers)}{io}"

    def _cache_dtype(self):
        kind = next(i.type for i in self._decoder.get_inputs() if i.name.startswith("past"))
        return np.float16 if kind == "tensor(float16)" else np.float32

    def encode(self, features: np.ndarray) -> np.ndarray:
        if self._io is not None:
            out = self._io.encode(features, self._cross_names, self._spec)["encoder_output"]
            return out.float().cpu().numpy()
        return self._encoder.run(["encoder_output"], {"input_features": features})[0].astype(
            np.float32, copy=False)

    def cross_cache(self, features: np.ndarray):
        if self._io is not None:
            outputs = self._io.encode(features, self._cross_names, self._spec)
            return [outputs[n] for n in self._cross_names]
        return dict(zip(self._cross_names, self._encoder.run(self._cross_names,
                                                            {"input_features": features})))

    def empty_cache(self, batch: int) -> list:
        if self._io is not None:
            return [self._io._tensor(n, shape)
                    for n, shape in zip(self._past_names, self._cache_shapes(batch))]
        return [np.zeros(shape, self._cache_dtype()) for shape in self._cache_shapes(batch)]

    def decode_step(self, tokens, cache, cross, lengths=None):
        cross_feeds = dict(zip(self._cross_names, cross)) if isinstance(cross, list) else cross
        feeds = {"input_ids": tokens, **dict(zip(self._past_names, cache)), **cross_feeds}
        if (lengths := self._lengths(tokens, cache, lengths)) is not None:
            feeds["cache_lengths"] = lengths
        if self._io is not None:
            return self._io.step(feeds, self._present_names, self._spec.vocab_size)
        logits, *present = self._decoder.run(None, feeds)
        return logits.astype(np.float32, copy=False), present

    def select(self, cache, rows: np.ndarray):
        if self._io is None:
            return select_rows(cache, rows)
        index = self._io.torch.from_numpy(np.asarray(rows)).to(self._io.device)
        return [c.index_select(0, index) for c in cache]

    def concat(self, parts: list):
        if self._io is None:
            return super().concat(parts)
        return [self._io.torch.cat(values) for values in zip(*parts)]

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
        self._encoder = self._decoder = self._io = self._aligner = None


def _float32(value) -> np.ndarray:
    """A cross K/V (numpy, or a CUDA tensor with IO binding) as float32 numpy."""
    if isinstance(value, np.ndarray):
        return value.astype(np.float32, copy=False)
    return value.float().cpu().numpy()


def _torch_stream() -> int:
    """torch's current CUDA stream, initialising CUDA (and loading torch's CUDA and cuDNN
    libraries, which onnxruntime-gpu then finds already loaded)."""
    try:
        import torch
    except ImportError as exc:
        raise DeviceError("ONNX on cuda keeps its caches in torch CUDA tensors: install a "
                          "CUDA build of torch") from exc
    if not torch.cuda.is_available():
        raise DeviceError("device 'cuda' was requested but PyTorch sees no CUDA GPU")
    torch.backends.cudnn.version()  # loads libcudnn into the process
    return torch.cuda.current_stream().cuda_stream
