from pathlib import Path

import pytest

import runtimes
from exporters.api import export
from exporters.targets.base import ExportOptions
from runtimes.audio import load_audio
from tests.conftest import SPEECH

THREADS = 2


def _tiny_en(tmp_path_factory, target: str, precision: str, name: str) -> Path:
    """bundled tiny.en exported once per session as ``target`` ``precision`` into ``name``
    (the server's model id)."""
    out = tmp_path_factory.mktemp("artifacts") / name
    export("bundled:tiny.en", ExportOptions(target, precision, threads=THREADS), out,
           log=lambda _: None)
    return out


@pytest.fixture(scope="session")
def int8_artifact(tmp_path_factory, speech_rows) -> Path:
    return _tiny_en(tmp_path_factory, "ctranslate2", "int8", "tiny.en-ct2-int8")


@pytest.fixture(scope="session")
def onnx_fp32(tmp_path_factory, speech_rows) -> Path:
    return _tiny_en(tmp_path_factory, "onnx", "fp32", "tiny.en-onnx-fp32")


@pytest.fixture(scope="session")
def onnx_int8(tmp_path_factory, speech_rows) -> Path:
    """Dynamic int8: batch-variant (its manifest says so)."""
    return _tiny_en(tmp_path_factory, "onnx", "int8", "tiny.en-onnx-int8")


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
