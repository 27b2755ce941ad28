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
