"""Bundled real tiny.en on real speech: the toolkit's claims, checked end to end."""

import numpy as np
import pytest

from bench.metrics import error_rates, normalizer
from tests.conftest import SPEECH
from tests.slow.conftest import subset

JFK = ("And so my fellow Americans ask not what your country can do for you, "
       "ask what you can do for your country.")


@pytest.mark.parametrize("name", ["pytorch_fp32", "ct2_int8"])
def test_jfk_is_transcribed_exactly(name, request, jfk):
    model = request.getfixturevalue(name)
    text = model.transcribe([jfk])[0].text
    assert normalizer("en")(text) == normalizer("en")(JFK)


@pytest.fixture(scope="module")
def en(speech_rows):
    return subset(speech_rows, "en")


def test_ct2_int8_wer_within_one_point_of_pytorch_fp32(pytorch_clip_errors, en_clip_errors,
                                                      ct2_int8):
    """On every other en clip (28 clips, 445 words; 1 point = 4.45 words). Measured extra
    words: +2 on AVX-512 + VNNI + AMX (Xeon, family 6 model 207); the AVX2 kind passed
    this bound in issue 32's fresh-clone run (value not recorded)."""
    errors = en_clip_errors(ct2_int8)
    print(f"word errors: pytorch fp32 {sum(pytorch_clip_errors)}, ctranslate2 int8 "
          f"{sum(errors)} of 445")
    assert sum(pytorch_clip_errors) < 0.10 * 445  # tiny.en's known quality on clean speech
    assert abs(sum(errors) - sum(pytorch_clip_errors)) <= 0.01 * 445


def test_batching_gives_the_same_text_as_one_by_one(en, ct2_int8):
    _, audio = en
    one = [t.text for t in ct2_int8.transcribe(audio[:8], batch_size=1)]
    eight = [t.text for t in ct2_int8.transcribe(audio[:8], batch_size=8)]
    assert sum(a == b for a, b in zip(one, eight)) >= 7


def test_longform_recordings_are_transcribed_completely(speech_rows, ct2_int8):
    rows, audio = subset(speech_rows, "longform")
    results = ct2_int8.transcribe(audio, batch_size=4)
    for row, result in zip(rows, results):
        ref_words = normalizer("en")(row["reference"]).split()
        hyp_words = normalizer("en")(result.text).split()
        assert result.windows >= result.duration_s / 30
        assert len(hyp_words) >= 0.9 * len(ref_words), row["id"]
        assert error_rates([row["reference"]], [result.text], ["en"]).wer < 0.2, row["id"]


def test_every_audio_format_decodes_to_the_same_words(speech_rows, ct2_int8):
    rows, audio = subset(speech_rows, "formats")
    texts = {r["path"]: t.text for r, t in zip(rows, ct2_int8.transcribe(audio, batch_size=4))}
    for path in ("jfk/jfk.mp3", "jfk/jfk.wav"):
        assert normalizer("en")(texts[path]) == normalizer("en")(JFK), path
    # The 8 kHz clip has lost everything above 4 kHz, so tiny.en misses a few words.
    rates = error_rates([r["reference"] for r in rows], list(texts.values()), ["en"] * len(rows))
    assert rates.wer < 0.15, texts


def test_silence_gives_an_empty_transcript(ct2_int8, tmp_path):
    short, long = np.zeros(16000 * 3, np.float32), np.zeros(16000 * 45, np.float32)
    results = ct2_int8.transcribe([short, long])
    assert [r.text for r in results] == ["", ""]
    assert [r.windows for r in results] == [0, 0]


def test_segment_timestamps_mean_the_same_on_every_runtime(jfk, en, pytorch_fp32, ct2_int8,
                                                           onnx_fp32):
    """The graph loop's timestamp rules (ONNX fp32), transformers' generate (PyTorch fp32)
    and CTranslate2's (int8) split real clips the same way: measured 13 of 13 clips
    identical for ONNX; for int8, 12 of 13 with as many segments and starts within 0.08 s on
    the AVX2 CPU, 11 of 13 with one start of 20 off by 0.44 s (a sentence split elsewhere)
    on the AVX-512 VNNI one, whose int8 kernels differ."""
    import runtimes
    from runtimes.base import DecodingOptions
    from runtimes.transcript.pipeline import Transcriber

    stamped = DecodingOptions(timestamps=True)
    clips = [str(jfk), *en[1][:12]]

    def segments(model):
        again = Transcriber(model.runtime, model.tokenizer, stamped)
        return [[(s.start, s.end, s.text) for s in t.segments]
                for t in again.transcribe(clips, batch_size=8)]

    reference = segments(pytorch_fp32)
    with runtimes.load(onnx_fp32, runtimes.RuntimeOptions(threads=2)) as model:
        graph = segments(model)
    int8 = segments(ct2_int8)
    assert len(reference[0]) == 2 and reference[0][0][:2] == (0.0, 8.0)  # jfk
    assert sum(a == b for a, b in zip(reference, graph)) >= 12
    alike = [(a, b) for a, b in zip(reference, int8) if len(a) == len(b)]
    assert len(alike) >= 11
    gaps = [abs(x[0] - y[0]) for a, b in alike for x, y in zip(a, b)]
    assert max(gaps) <= 0.5 and sum(g <= 0.2 for g in gaps) >= 0.9 * len(gaps)


def test_the_cli_transcribes_a_damaged_mp3_whole_and_says_what_it_skipped(int8_artifact,
                                                                          tmp_path, capsys):
    """Issue 32: the CLI answered 'And so my fellow Americans ask not why' (the first 5.5 s)
    with exit 0 and no word of the rest. Now it transcribes past the damaged frame."""
    import json

    from runtimes.__main__ import main
    from tests.media import damaged_mp3

    path = damaged_mp3(tmp_path / "d.mp3")
    assert main([str(int8_artifact), str(path), "--format", "json", "--threads", "2"]) == 0
    out, err = capsys.readouterr()
    row = json.loads(out)
    assert normalizer("en")(row["text"]).endswith("ask what you can do for your country")
    assert row["skipped_frames"] == 1 and row["declared_duration"] == 11.0
    assert row["duration"] > 10.9
    assert "warning: " in err and "skipped 1 damaged frame(s); decoded 10.95 s of the 11.00 s" in err
    # one file's SRT is plain SRT: no comment line before its first cue
    assert main([str(int8_artifact), str(SPEECH / "jfk" / "jfk.flac"), "--format", "srt"]) == 0
    assert capsys.readouterr().out.startswith("1\n00:00:00,000 --> ")
    assert main([str(int8_artifact), str(SPEECH / "jfk" / "jfk.flac"), "--format", "tsv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "start\tend\ttext" and len(lines) >= 2
    assert all(int(a) < int(b) for a, b, _ in (line.split("\t") for line in lines[1:]))


def test_output_dir_writes_one_file_per_input_and_format(int8_artifact, en_clips, tmp_path,
                                                         capsys):
    """Issue 34: --output-dir writes NAME.txt|srt|vtt|tsv|json per input (as whisper.cpp and
    openai-whisper do), several inputs' subtitles included, and nothing half-written."""
    import json

    from runtimes.__main__ import main

    clips = [SPEECH / "jfk" / "jfk.flac", SPEECH / en_clips[0]["path"]]
    out = tmp_path / "out"
    assert main([str(int8_artifact), *map(str, clips), "--format", "all", "--output-dir",
                 str(out), "--threads", "2"]) == 0
    assert capsys.readouterr().out == ""  # files, not standard output
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(f"{c.stem}.{ext}" for c in clips
                           for ext in ("txt", "srt", "vtt", "tsv", "json"))
    jfk = json.loads((out / "jfk.json").read_text())
    assert (out / "jfk.txt").read_text() == jfk["text"] + "\n"
    assert normalizer("en")(jfk["text"]).endswith("what you can do for your country")
    assert (out / "jfk.srt").read_text().startswith("1\n00:00:00,000 --> ")
    assert (out / "jfk.vtt").read_text().startswith("WEBVTT")
    assert (out / "jfk.tsv").read_text().splitlines()[0] == "start\tend\ttext"
    assert len(jfk["segments"]) == (out / "jfk.tsv").read_text().count("\n") - 1
