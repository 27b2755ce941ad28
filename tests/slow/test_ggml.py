"""``--to ggml`` on real tiny.en: every offered type exports (parity in the manifest), loads
in the whisper.cpp runtime and transcribes real speech; what whisper.cpp cannot do is
refused with one clear error before any work."""

from __future__ import annotations

import pytest

import runtimes
from exporters.api import export
from exporters.options import ExportOptions

pytest.importorskip("gguf", reason="the 'ggml' extra (gguf) is not installed")
pytest.importorskip("_pywhispercpp", reason="the 'ggml' extra (pywhispercpp) is not installed")

JFK = ("and so my fellow americans ask not what your country can do for you ask what you can "
       "do for your country")
#: WER on the first 4 `en` clips (59 words), measured (this test's output, AVX2 machine):
#: f16 and q8_0 8.5%, q5_0 and q5_1 5.1%, q4_0 10.2%, q4_1 3.4%; bounds with a margin of
#: about one word (a broken file gives ~100%).
MAX_WER = {"f16": 0.1, "q8_0": 0.1, "q5_0": 0.1, "q5_1": 0.1, "q4_0": 0.14, "q4_1": 0.14}


@pytest.fixture(scope="module")
def en4(en_clips):
    from runtimes.audio.files import load_audio
    from tests.conftest import SPEECH

    rows = en_clips[:4]
    return [load_audio(SPEECH / r["path"]) for r in rows], [r["reference"] for r in rows]


@pytest.fixture(scope="module")
def f16_artifact(tmp_path_factory, jfk):
    out = tmp_path_factory.mktemp("ggml") / "f16"
    export("bundled:tiny.en", ExportOptions("ggml", "fp16", threads=2), out,
           parity_audio=jfk, log=lambda _: None)
    return out


@pytest.mark.parametrize("dtype", list(MAX_WER))
def test_every_type_exports_and_transcribes_real_speech(dtype, f16_artifact, tmp_path, jfk,
                                                        en4):
    from bench.metrics import error_rates, normalizer
    from runtimes.artifacts.ggml_file import read_ggml
    from runtimes.artifacts.manifest import read_manifest
    from runtimes.precision import canonical

    out = f16_artifact
    if dtype != "f16":
        out = tmp_path / dtype
        export("bundled:tiny.en", ExportOptions("ggml", dtype, threads=2), out,
               parity_audio=jfk, log=lambda _: None)
    manifest = read_manifest(out)
    assert (manifest.format, manifest.precision) == ("ggml", dtype)
    assert manifest.parity["passed"] and manifest.parity["encoder_rel_error"] is None
    assert read_ggml(out / "ggml-model.bin", data=False).dtype == dtype
    with runtimes.load(out, runtimes.RuntimeOptions(threads=2)) as model:
        # the file says f16; the runtime reports it in the toolkit's names (fp16)
        assert model.runtime.precision == canonical(dtype) and model.runtime.sequential_batches
        if dtype in ("f16", "q8_0"):
            assert normalizer("en")(model.transcribe([jfk])[0].text) == JFK
        audio, references = en4
        texts = [t.text for t in model.transcribe(audio, batch_size=4)]
    wer = error_rates(references, texts, ["en"] * len(texts)).wer
    print(f"{dtype}: WER {wer:.3f} on {len(texts)} en clips")
    assert wer <= MAX_WER[dtype]


def test_batched_windows_equal_each_alone(f16_artifact, en4):
    audio, _ = en4
    with runtimes.load(f16_artifact, runtimes.RuntimeOptions(threads=2)) as model:
        together = [t.tokens for t in model.transcribe(audio[:2], batch_size=2)]
        alone = [model.transcribe([a])[0].tokens for a in audio[:2]]
    assert together == alone


def test_what_whisper_cpp_cannot_do_is_refused_before_any_work(f16_artifact, tiny_random,
                                                               tmp_path):
    import shutil

    from runtimes.errors import ArtifactError, DeviceError, OptionError

    for decoding, what in ((runtimes.DecodingOptions(timestamps=True), "timestamps"),
                           (runtimes.DecodingOptions(temperature=(0.0, 0.2)), "fallback"),
                           (runtimes.DecodingOptions(word_timestamps=True), "timestamps")):
        with pytest.raises(OptionError, match=f"{what}.*not available for ggml"):
            runtimes.load(f16_artifact, decoding=decoding)
    with pytest.raises(DeviceError, match="cpu only"):
        runtimes.load(f16_artifact, runtimes.RuntimeOptions(device="cuda"))
    with pytest.raises(OptionError, match="runs in the type it was written in"):
        runtimes.load(f16_artifact, runtimes.RuntimeOptions(precision="q8_0"))
    # whisper.cpp's own loader would return a null context for a cut file (the process
    # then died at the next call): the runtime reads the table first.
    cut = tmp_path / "cut"
    shutil.copytree(f16_artifact, cut)
    model_file = cut / "ggml-model.bin"
    model_file.write_bytes(model_file.read_bytes()[:5_000_000])
    with pytest.raises(ArtifactError, match="ggml-model.bin has 5000000 bytes, the manifest"):
        runtimes.load(cut, runtimes.RuntimeOptions(verify_checksums=False))
    from runtimes.engines.whispercpp import WhisperCppRuntime  # past the manifest's check

    with pytest.raises(ArtifactError, match="not a complete whisper.cpp ggml file"):
        WhisperCppRuntime(cut, runtimes.RuntimeOptions())
    # A feed-forward width whisper.cpp cannot hold: refused before anything is written.
    with pytest.raises(OptionError, match="not 4 x d_model"):
        export(str(tiny_random), ExportOptions("ggml", threads=2), tmp_path / "random",
               log=lambda _: None)
    assert not (tmp_path / "random").exists()


def test_served_with_the_openai_api(f16_artifact, jfk):
    """The real server on a ggml artifact: windows joined per batch; what whisper.cpp
    cannot decode is a 400 naming the field before any audio is decoded."""
    import httpx

    from runtimes.serve.launch import start_server

    with runtimes.load(f16_artifact, runtimes.RuntimeOptions(threads=2)) as model:
        expected = model.transcribe([jfk])[0].text
    with start_server(f16_artifact, "--threads", "2") as server:
        def post(**fields):
            return httpx.post(server.url + "/v1/audio/transcriptions", timeout=120,
                              data={"model": "whisper-1", **fields},
                              files={"file": (jfk.name, jfk.read_bytes())})

        assert post().json()["text"] == expected
        for fields, field in (({"response_format": "srt"}, "response_format"),
                              ({"temperature": "0.4"}, "temperature")):
            response = post(**fields)
            assert response.status_code == 400, response.text
            error = response.json()["error"]
            assert error["param"] == field and "not available for ggml" in error["message"]
        assert "per batch" in server.log()
