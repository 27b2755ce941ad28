"""TensorRT runtime: the encoder and decoder-step engines of a TensorRT artifact, with CUDA
buffers held as torch tensors, driven by the shared decoding loop.

Engines are tied to a GPU model and TensorRT version; loading one built elsewhere is refused
with both identities named, instead of failing inside TensorRT.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from runtimes.base import Decoded, DecodingOptions, RuntimeOptions
from runtimes.engines.graph import GraphRuntime
from runtimes.engines.registry import register
from runtimes.errors import ArtifactError, DeviceError, OptionError


def gpu_identity() -> dict[str, str]:
    """Name, compute capability and TensorRT version of this machine's GPU 0: an engine runs
    only where all three match the ones it was built with."""
    import tensorrt as trt
    import torch

    major, minor = torch.cuda.get_device_capability(0)
    return {"gpu": torch.cuda.get_device_name(0), "compute_capability": f"{major}.{minor}",
            "tensorrt": trt.__version__}


class _Engine:
    """One deserialised engine and its execution context."""

    def __init__(self, runtime, path: Path, torch) -> None:
        self._torch = torch
        self.engine = runtime.deserialize_cuda_engine(path.read_bytes())
        if self.engine is None:
            raise ArtifactError(f"TensorRT cannot deserialise {path}")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        import tensorrt as trt

        mode = trt.TensorIOMode.INPUT
        self.inputs = [n for n in names if self.engine.get_tensor_mode(n) == mode]
        self.outputs = [n for n in names if self.engine.get_tensor_mode(n) != mode]

    def _dtype(self, name: str):
        import tensorrt as trt

        torch = self._torch
        types = {trt.float32: torch.float32, trt.float16: torch.float16,
                 trt.int64: torch.int64, trt.int32: torch.int32}
        return types[self.engine.get_tensor_dtype(name)]

    def __call__(self, feeds: dict) -> dict:
        torch = self._torch
        for name in self.inputs:
            # the engine's own dtype: TensorRT may have narrowed int64 ids/lengths to int32
            tensor = feeds[name].to(self._dtype(name)).contiguous()
            feeds[name] = tensor
            self.context.set_input_shape(name, tuple(tensor.shape))
            self.context.set_tensor_address(name, tensor.data_ptr())
        outputs = {}
        for name in self.outputs:
            shape = tuple(self.context.get_tensor_shape(name))
            outputs[name] = torch.empty(shape, dtype=self._dtype(name), device="cuda")
            self.context.set_tensor_address(name, outputs[name].data_ptr())
        stream = torch.cuda.current_stream()
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise RuntimeError("TensorRT execution failed")
        stream.synchronize()
        return outputs


@register
class TensorRTRuntime(GraphRuntime):
    """Whisper as two TensorRT engines (built from the toolkit's two ONNX graphs)."""

    format = "tensorrt"
    graph_files = ("encoder.plan", "decoder.plan")
    exports_alignment = True

    def __init__(self, model_dir: Path, options: RuntimeOptions) -> None:
        if options.device != "cuda":  # before reading anything: nothing else matters then
            raise DeviceError("TensorRT artifacts run on device 'cuda' only")
        super().__init__(model_dir, options)
        try:
            import tensorrt as trt
            import torch
        except ImportError as exc:
            raise OptionError("TensorRT artifacts need `pip install tensorrt` (extra: gpu)") \
                from exc
        if not torch.cuda.is_available():
            raise DeviceError("TensorRT artifacts need an NVIDIA GPU; PyTorch sees none")
        self._check_identity()
        self._check_precision(options.precision)
        self._torch = torch
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self._encoder, self._decoder = (_Engine(runtime, self.model_dir / name, torch)
                                        for name in self.graph_files)
        self._past = [n for n in self._decoder.inputs if n.startswith("past")]
        aligner = self.model_dir / "alignment.plan"  # built with --word-timestamps
        self._aligner = _Engine(runtime, aligner, torch) if aligner.is_file() else None

    def _check_identity(self) -> None:
        here = gpu_identity()
        built = self._spec.trt_identity
        if built != here:
            raise ArtifactError(
                f"{self.model_dir} was built for {built}, this machine is {here}; TensorRT "
                f"engines only run where they were built: export again here")

    def _features(self, features: np.ndarray):
        return self._torch.from_numpy(features).cuda()

    def encode(self, features: np.ndarray) -> np.ndarray:
        return self._encoder({"input_features": self._features(features)})[
            "encoder_output"].cpu().numpy()

    def cross_cache(self, features: np.ndarray) -> dict:
        out = self._encoder({"input_features": self._features(features)})
        return {name: value for name, value in out.items() if name.startswith("cross")}

    def empty_cache(self, batch: int) -> list:
        return [self._torch.zeros(shape, device="cuda") for shape in self._cache_shapes(batch)]

    def decode_step(self, tokens: np.ndarray, cache: list, cross: dict, lengths=None):
        feeds = {"input_ids": self._torch.from_numpy(tokens).cuda(),
                 **dict(zip(self._past, cache)), **cross}
        if (lengths := self._lengths(tokens, cache, lengths)) is not None:
            feeds["cache_lengths"] = self._torch.from_numpy(lengths).cuda()
        out = self._decoder(feeds)
        present = [out[name.replace("past", "present")] for name in self._past]
        return out["logits"].cpu().numpy(), present

    def concat(self, parts: list) -> dict:
        return {name: self._torch.cat([p[name] for p in parts]) for name in parts[0]}

    def select(self, cache, rows: np.ndarray):
        index = self._torch.from_numpy(np.asarray(rows)).cuda()
        if isinstance(cache, dict):
            return {name: value.index_select(0, index) for name, value in cache.items()}
        return [value.index_select(0, index) for value in cache]

    def decode(self, features: np.ndarray, prompts: list[list[int]], options: DecodingOptions,
               temperature: float = 0.0, seeds: list[int] | None = None) -> list[Decoded]:
        rows = options.best_of if temperature > 0 else options.beam_size
        if features.shape[0] * rows > (self._spec.max_batch or 0):
            raise OptionError(f"batch x {'candidates' if temperature > 0 else 'beams'} = "
                              f"{features.shape[0] * rows} exceeds this engine's profile "
                              f"maximum {self._spec.max_batch}")
        return super().decode(features, prompts, options, temperature, seeds)

    @property
    def aligns(self) -> bool:
        return self._aligner is not None

    def alignment_pass(self, tokens: np.ndarray, cross: dict) -> tuple[np.ndarray, np.ndarray]:
        """The fp32 alignment engine on the encoder's cross K/V (kept on the GPU)."""
        out = self._aligner({"input_ids": self._torch.from_numpy(tokens).cuda(),
                             **{name: value.float() for name, value in cross.items()}})
        return out["logits"].float().cpu().numpy(), out["attention"].float().cpu().numpy()

    def close(self) -> None:
        self._encoder = self._decoder = self._aligner = None
