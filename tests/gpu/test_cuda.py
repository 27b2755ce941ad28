"""CUDA paths: each test runs where an NVIDIA GPU and its own packages are, and is skipped
with the missing piece named elsewhere."""

import importlib.util
import os

import pytest

import runtimes
from exporters.api import export
from exporters.options import ExportOptions


def _cuda_reason() -> str | None:
    import torch

    return None if torch.cuda.is_available() else "no CUDA GPU visible to torch on this machine"


pytestmark = pytest.mark.skipif(_cuda_reason() is not None, reason=_cuda_reason() or "")

#: The model every test exports; a GPU machine without the bundled packages passes a
#: CTranslate2 directory of tiny.en here.
MODEL = os.environ.get("WHISPER_EXPORTERS_TEST_MODEL", "bundled:tiny.en")
JFK = ("and so my fellow americans ask not what your country can do for you "
       "ask what you can do for your country")


def _needs(module: str, extra: str = "gpu") -> None:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed (extra: {extra})")


def _ort_provider(name: str) -> None:
    _needs("onnxruntime")
    import onnxruntime

    if name not in onnxruntime.get_available_providers():
        pytest.skip(f"onnxruntime here has no {name} (install onnxruntime-gpu)")


def _words(text: str) -> str:
    from bench.metrics import normalizer

    return normalizer("en")(text)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Artifacts exported once per module, keyed by (target, flag)."""
    made = {}

    def get(target: str, flag: str):
        if (target, flag) not in made:
            out = tmp_path_factory.mktemp(f"{target}-{flag}")
            export(MODEL, ExportOptions(target, flag, device="cuda"), out,
                   force=True, log=lambda _: None)
            made[target, flag] = out
        return made[target, flag]

    return get


@pytest.fixture(scope="module")
def clips(en_clips):
    from runtimes.audio.files import load_audio, pyav_available
    from tests.conftest import SPEECH

    rows = [r for r in en_clips if pyav_available() or r["path"].endswith(".wav")][:8]
    return [load_audio(SPEECH / r["path"]) for r in rows]


@pytest.fixture(scope="module")
def jfk_wav(speech_rows):
    from tests.conftest import SPEECH

    return SPEECH / "jfk" / "jfk.wav"


@pytest.mark.parametrize("flag, precision", [("int8", "int8_float16"), ("fp16", "float16")])
def test_ctranslate2_cuda_export_and_transcribe(flag, precision, exported, jfk_wav):
    _needs("ctranslate2")
    import ctranslate2

    if ctranslate2.get_cuda_device_count() == 0:
        pytest.skip("this ctranslate2 sees no CUDA GPU (its wheel needs CUDA 12's libcublas)")
    with runtimes.load(exported("ctranslate2", flag), runtimes.RuntimeOptions("cuda")) as model:
        assert model.runtime.precision == precision
        assert _words(model.transcribe([jfk_wav])[0].text) == JFK


@pytest.mark.parametrize("precision", ["float16", "bfloat16"])
def test_pytorch_half_precisions_on_cuda(precision, jfk_wav):
    from exporters.sources import resolve

    options = runtimes.RuntimeOptions(device="cuda", precision=precision)
    with runtimes.load(resolve(MODEL).hf_dir, options) as model:
        assert _words(model.transcribe([jfk_wav])[0].text) == JFK


@pytest.mark.parametrize("flag", ["fp32", "fp16"])
def test_torchscript_traced_on_cuda(flag, exported, jfk_wav):
    """Both failed on the first GPU run: a CPU position index baked into the fp32 trace,
    and a float32 mask against fp16 scores."""
    options = runtimes.RuntimeOptions("cuda", trust_code=True)
    with runtimes.load(exported("torchscript", flag), options) as model:
        assert _words(model.transcribe([jfk_wav])[0].text) == JFK


def test_a_cpu_trace_is_refused_on_cuda_with_the_reason(tmp_path, jfk_wav):
    from runtimes.errors import OptionError

    out = tmp_path / "ts-cpu"
    export(MODEL, ExportOptions("torchscript", "fp32"), out, log=lambda _: None)
    with pytest.raises(OptionError, match="traced for device 'cpu'.*--device cuda"):
        runtimes.load(out, runtimes.RuntimeOptions("cuda", trust_code=True))


@pytest.mark.parametrize("flag", ["fp32", "fp16", "int8"])
def test_onnx_on_the_cuda_ep_keeps_caches_on_the_gpu(flag, exported, jfk_wav):
    _ort_provider("CUDAExecutionProvider")
    with runtimes.load(exported("onnx", flag), runtimes.RuntimeOptions("cuda")) as model:
        assert model.runtime.providers[0] == "CUDAExecutionProvider"
        assert "IO binding" in model.runtime.backend
        assert _words(model.transcribe([jfk_wav])[0].text) == JFK


def test_onnx_cuda_gives_the_cpu_transcripts(exported, clips):
    """IO binding against the plain CPU path, fp32: the same words on real clips."""
    _ort_provider("CUDAExecutionProvider")
    path = exported("onnx", "fp32")
    with runtimes.load(path, runtimes.RuntimeOptions("cuda")) as gpu, \
            runtimes.load(path, runtimes.RuntimeOptions("cpu")) as cpu:
        on_gpu = [_words(t.text) for t in gpu.transcribe(clips, batch_size=4)]
        on_cpu = [_words(t.text) for t in cpu.transcribe(clips, batch_size=4)]
    assert on_gpu == on_cpu


@pytest.mark.parametrize("flag", ["fp32", "fp16"])
def test_onnx_cuda_is_batch_invariant(flag, exported, clips):
    """A clip's tokens alone and batched with others (float precisions; int8's per-clip
    scaling is checked on the CPU, tests/slow/test_real_graphs.py)."""
    _ort_provider("CUDAExecutionProvider")
    with runtimes.load(exported("onnx", flag), runtimes.RuntimeOptions("cuda")) as model:
        alone = [model.transcribe([c])[0].tokens for c in clips]
        batched = [t.tokens for t in model.transcribe(clips, batch_size=len(clips))]
    assert batched == alone


def test_a_provider_that_cannot_start_is_an_error_not_a_fallback(exported, jfk_wav):
    _ort_provider("CUDAExecutionProvider")
    from runtimes.errors import DeviceError

    options = runtimes.RuntimeOptions("cuda", provider="tensorrt")
    path = exported("onnx", "fp16")
    if importlib.util.find_spec("tensorrt") is not None:
        with runtimes.load(path, options) as model:
            assert model.runtime.providers[0] == "TensorrtExecutionProvider"
            assert _words(model.transcribe([jfk_wav])[0].text) == JFK
        return
    with pytest.raises(DeviceError, match="could not start TensorrtExecutionProvider.*TensorRT 10"):
        runtimes.load(path, options)


@pytest.mark.parametrize("flag", ["fp16"])
def test_tensorrt_engines(flag, exported, jfk_wav):
    _needs("tensorrt")
    with runtimes.load(exported("tensorrt", flag), runtimes.RuntimeOptions("cuda")) as model:
        assert _words(model.transcribe([jfk_wav])[0].text) == JFK


@pytest.mark.parametrize("target, flag", [("torchscript", "fp32"), ("torchscript", "fp16"),
                                          ("tensorrt", "fp16")])
def test_word_timestamps_from_the_alignment_graph_on_cuda(target, flag, tmp_path, jfk_wav):
    """An export with --word-timestamps on cuda (the fp32 alignment graph traced there, or
    a TensorRT engine built from alignment.onnx) gives the words ONNX fp32 gives on the
    CPU, each start within 0.1 s."""
    if target == "tensorrt":
        _needs("tensorrt")
    _needs("onnxruntime")
    words = runtimes.DecodingOptions(word_timestamps=True)
    gpu, cpu = tmp_path / "gpu", tmp_path / "cpu"
    export(MODEL, ExportOptions(target, flag, device="cuda", word_timestamps=True), gpu,
           log=lambda _: None)
    export(MODEL, ExportOptions("onnx", word_timestamps=True), cpu, log=lambda _: None)
    found = []
    for path, options in ((gpu, runtimes.RuntimeOptions("cuda", trust_code=True)),
                          (cpu, runtimes.RuntimeOptions())):
        with runtimes.load(path, options, words) as model:
            found.append([(w.word, w.start) for s in model.transcribe([jfk_wav])[0].segments
                          for w in s.words])
    assert [w for w, _ in found[0]] == [w for w, _ in found[1]] and len(found[0]) == 22
    assert max(abs(a - b) for (_, a), (_, b) in zip(*found)) <= 0.1
