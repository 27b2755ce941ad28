"""CUDA paths: run where an NVIDIA GPU is visible, skipped with the reason elsewhere."""

import importlib.util

import pytest

import runtimes
from exporters.api import export
from exporters.targets.base import ExportOptions


def _cuda_devices() -> int:
    import ctranslate2

    return ctranslate2.get_cuda_device_count()


pytestmark = pytest.mark.skipif(
    _cuda_devices() == 0, reason="no CUDA GPU visible to CTranslate2 on this machine"
)

JFK = ("and so my fellow americans ask not what your country can do for you "
       "ask what you can do for your country")


@pytest.mark.parametrize("flag, precision", [("int8", "int8_float16"), ("fp16", "float16")])
def test_ctranslate2_cuda_export_and_transcribe(flag, precision, tmp_path, jfk):
    from bench.metrics import normalizer

    out = tmp_path / precision
    export("bundled:tiny.en", ExportOptions("ctranslate2", flag, device="cuda"), out,
           log=lambda _: None)
    options = runtimes.RuntimeOptions(device="cuda")
    with runtimes.load(out, options) as model:
        assert model.runtime.precision == precision
        assert normalizer("en")(model.transcribe([jfk])[0].text) == JFK


def test_pytorch_fp16_on_cuda(tinyen_hf, jfk):
    from bench.metrics import normalizer

    options = runtimes.RuntimeOptions(device="cuda", precision="float16")
    with runtimes.load(tinyen_hf, options) as model:
        assert normalizer("en")(model.transcribe([jfk])[0].text) == JFK


def _ort_has(provider: str) -> bool:
    import onnxruntime

    return provider in onnxruntime.get_available_providers()


@pytest.mark.parametrize("provider, flag", [("cuda", "fp16"), ("cuda", "int8"),
                                            ("tensorrt", "fp16")])
def test_onnx_on_gpu_providers(provider, flag, tmp_path, jfk):
    from bench.metrics import normalizer

    name = {"cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider"}[provider]
    if not _ort_has(name):
        pytest.skip(f"onnxruntime here has no {name} (install onnxruntime-gpu)")
    out = tmp_path / f"onnx-{flag}"
    export("bundled:tiny.en", ExportOptions("onnx", flag, device="cuda"), out,
           log=lambda _: None)
    options = runtimes.RuntimeOptions(device="cuda", provider=provider,
                                      cache_dir=str(tmp_path / "trt"))
    with runtimes.load(out, options) as model:
        assert normalizer("en")(model.transcribe([jfk])[0].text) == JFK


@pytest.mark.parametrize("target, flag", [("tensorrt", "fp16"), ("torchscript", "fp16")])
def test_gpu_only_graph_targets(target, flag, tmp_path, jfk):
    from bench.metrics import normalizer

    if target == "tensorrt" and importlib.util.find_spec("tensorrt") is None:
        pytest.skip("tensorrt is not installed (extra: gpu)")
    out = tmp_path / target
    export("bundled:tiny.en", ExportOptions(target, flag, device="cuda"), out,
           log=lambda _: None)
    with runtimes.load(out, runtimes.RuntimeOptions(device="cuda")) as model:
        assert normalizer("en")(model.transcribe([jfk])[0].text) == JFK
