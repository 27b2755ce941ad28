from pathlib import Path

import pytest

import runtimes
from exporters.api import export
from exporters.targets.base import ExportOptions
from runtimes.audio import load_audio
from tests.conftest import SPEECH

THREADS = 2


@pytest.fixture(scope="session")
def int8_artifact(tmp_path_factory, speech_rows) -> Path:
    out = tmp_path_factory.mktemp("artifacts") / "tiny.en-ct2-int8"
    export("bundled:tiny.en", ExportOptions("ctranslate2", "int8", threads=THREADS), out,
           log=lambda _: None)
    return out


@pytest.fixture(scope="session")
def onnx_fp32(tmp_path_factory, speech_rows) -> Path:
    out = tmp_path_factory.mktemp("artifacts") / "tiny.en-onnx-fp32"
    export("bundled:tiny.en", ExportOptions("onnx", threads=THREADS), out, log=lambda _: None)
    return out


@pytest.fixture(scope="session")
def onnx_int8(tmp_path_factory, speech_rows) -> Path:
    """tiny.en ONNX dynamic int8 (batch-variant), exported once for the tests that need it."""
    out = tmp_path_factory.mktemp("artifacts") / "tiny.en-onnx-int8"
    export("bundled:tiny.en", ExportOptions("onnx", "int8", threads=THREADS), out,
           log=lambda _: None)
    return out


@pytest.fixture(scope="session")
def pytorch_fp32(tinyen_hf):
    with runtimes.load(tinyen_hf, runtimes.RuntimeOptions(threads=THREADS)) as model:
        yield model


@pytest.fixture(scope="session")
def ct2_int8(int8_artifact):
    with runtimes.load(int8_artifact, runtimes.RuntimeOptions(threads=THREADS)) as model:
        yield model


def subset(rows, name):
    picked = [r for r in rows if r["subset"] == name]
    return picked, [load_audio(SPEECH / r["path"]) for r in picked]


@pytest.fixture(scope="session")
def en_wer(speech_rows):
    """WER of a model on the en subset (batch 8), and PyTorch fp32's, computed once."""
    from bench.metrics import error_rates

    rows, audio = subset(speech_rows, "en")
    refs, langs = [r["reference"] for r in rows], [r["language"] for r in rows]

    def wer(model) -> float:
        return error_rates(refs, [t.text for t in model.transcribe(audio, 8)], langs).wer

    return wer


@pytest.fixture(scope="session")
def pytorch_en_wer(en_wer, pytorch_fp32) -> float:
    return en_wer(pytorch_fp32)
