from pathlib import Path

import pytest

import runtimes
from exporters.api import export
from exporters.options import ExportOptions
from runtimes.audio.files import load_audio
from tests.conftest import SPEECH

THREADS = 2


def export_tiny_en(tmp_path_factory, target: str, precision: str, name: str,
                   word_timestamps: bool = False, int8_activations: str = "clip") -> Path:
    """bundled tiny.en exported as ``target`` ``precision`` into ``name`` (the server's
    model id), with the alignment graph if ``word_timestamps``; callers are session or
    module fixtures, so each artifact is exported once."""
    out = tmp_path_factory.mktemp("artifacts") / name
    export("bundled:tiny.en", ExportOptions(target, precision, threads=THREADS,
                                            word_timestamps=word_timestamps,
                                            int8_activations=int8_activations),
           out, log=lambda _: None)
    return out


@pytest.fixture(scope="session")
def int8_artifact(tmp_path_factory, speech_rows) -> Path:
    return export_tiny_en(tmp_path_factory, "ctranslate2", "int8", "tiny.en-ct2-int8")


@pytest.fixture(scope="session")
def onnx_fp32(tmp_path_factory, speech_rows) -> Path:
    return export_tiny_en(tmp_path_factory, "onnx", "fp32", "tiny.en-onnx-fp32")


@pytest.fixture(scope="session")
def onnx_int8(tmp_path_factory, speech_rows) -> Path:
    """Dynamic int8, each activation row scaled on its own: batch-invariant."""
    return export_tiny_en(tmp_path_factory, "onnx", "int8", "tiny.en-onnx-int8")


@pytest.fixture(scope="session")
def onnx_int8_batch(tmp_path_factory, speech_rows) -> Path:
    """Dynamic int8 with one activation scale per batch (``--int8-activations batch``):
    batch-variant, as its manifest says."""
    return export_tiny_en(tmp_path_factory, "onnx", "int8", "tiny.en-onnx-int8-batch",
                          int8_activations="batch")


@pytest.fixture(scope="session")
def onnx_int8_words(tmp_path_factory, speech_rows) -> Path:
    """ONNX int8 with its alignment graph: what a faster-whisper user switching to ONNX
    exports to keep word timestamps (tests/slow/test_model_api.py)."""
    return export_tiny_en(tmp_path_factory, "onnx", "int8", "tiny.en-onnx-int8-words", True)


@pytest.fixture(scope="session")
def openvino_int8_words(tmp_path_factory, speech_rows) -> Path:
    """OpenVINO int8 with its alignment graph (a separate graph: the encoder and decoder are
    those of a plain export), shared by the graph tests and the word-timestamp tests. It
    runs bf16 where the CPU has it: the cross K/V reach the f32 alignment graph widened."""
    return export_tiny_en(tmp_path_factory, "openvino", "int8", "tiny.en-openvino-int8", True)


@pytest.fixture(scope="session")
def torchscript_fp32_words(tmp_path_factory, speech_rows) -> Path:
    """TorchScript fp32 with its traced alignment graph (alignment.pt), shared likewise."""
    return export_tiny_en(tmp_path_factory, "torchscript", "fp32", "tiny.en-torchscript-fp32",
                          True)


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
def en_clip_errors(speech_rows):
    """Word errors of a model on each of every other clip of the en subset (28 clips, 445
    words; batch 8), as ``scripts/clip_errors.py`` measures them on any CPU or under an
    emulator. Half the subset halves the suite's costliest checks; the figures over all of
    `en` are the bench's (README)."""
    from bench.metrics import clip_word_errors

    rows, audio = subset(speech_rows, "en")
    rows, audio = rows[::2], audio[::2]
    refs, langs = [r["reference"] for r in rows], [r["language"] for r in rows]

    def errors(model) -> list[int]:
        return clip_word_errors(refs, [t.text for t in model.transcribe(audio, 8)], langs)

    return errors


@pytest.fixture(scope="session")
def pytorch_clip_errors(en_clip_errors, pytorch_fp32) -> list[int]:
    return en_clip_errors(pytorch_fp32)
