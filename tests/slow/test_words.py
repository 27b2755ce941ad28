"""Word timestamps of real tiny.en on real speech against faster-whisper's (issue 16)."""

import numpy as np
import pytest

import runtimes
from bench.timing import word_start_gaps
from runtimes.errors import OptionError
from tests.slow.conftest import THREADS, export_tiny_en, subset

WORDS = runtimes.DecodingOptions(word_timestamps=True)


@pytest.fixture(scope="module")
def clips(speech_rows, jfk):
    return [jfk, *subset(speech_rows, "en")[1][:4]]


@pytest.fixture(scope="module")
def faster_whisper_words(bundled_ct2_dir, clips):
    """faster-whisper's own word_timestamps=True on the same model (greedy, no VAD: every
    clip is one window)."""
    from faster_whisper import WhisperModel

    model = WhisperModel(str(bundled_ct2_dir), cpu_threads=THREADS)
    return [[(w.word, w.start) for s in model.transcribe(c, beam_size=1, word_timestamps=True)[0]
             for w in s.words] for c in clips]


@pytest.fixture(scope="module")
def onnx_words(tmp_path_factory, speech_rows):
    """ONNX fp32 exported with its alignment graph (the session's plain ONNX fp32 is the
    artifact without one, below and in the server's tests)."""
    return export_tiny_en(tmp_path_factory, "onnx", "fp32", "tiny.en-onnx-words", True)


@pytest.mark.parametrize("source", ["int8_artifact", "onnx_words",
                                    "openvino_int8_words"])
def test_word_starts_agree_with_faster_whisper(source, request, clips, faster_whisper_words):
    """CTranslate2 int8 (its align), ONNX fp32 and OpenVINO int8 (their alignment graph and
    the shared DTW) against faster-whisper: median start gap under 0.2 s over the words.
    (PyTorch fp32 gives ONNX fp32's words: tested below.)"""
    path = request.getfixturevalue(source)
    with runtimes.load(path, runtimes.RuntimeOptions(threads=THREADS), WORDS) as model:
        found = model.transcribe(clips, batch_size=8)
    gaps, total = [], 0
    for result, theirs in zip(found, faster_whisper_words):
        ours = [(w.word, w.start) for s in result.segments for w in s.words]
        total += len(ours)
        assert all(s.start <= w.start <= w.end <= s.end + 1.0
                   for s in result.segments for w in s.words)
        gaps += word_start_gaps(ours, theirs)
    print(f"{source}: {len(gaps)} of {total} words matched, median gap {np.median(gaps):.3f} s")
    assert len(gaps) >= 0.9 * total and np.median(gaps) < 0.2


def _words(path, clips) -> list:
    options = runtimes.RuntimeOptions(threads=THREADS, trust_code=True)
    with runtimes.load(path, options, WORDS) as model:
        return [(w.word, w.start, w.end, w.probability)
                for t in model.transcribe(clips[:3], 3) for s in t.segments for w in s.words]


@pytest.mark.parametrize("source", ["tinyen_hf", "torchscript_fp32_words"])
def test_pytorch_and_torchscript_words_are_onnxs(source, request, onnx_words, clips):
    """The alignment graphs compute what the PyTorch model's heads give (fp32): the same
    words, times and probabilities from transformers' layers, the ONNX graph and the traced
    TorchScript one (batches of clips of different lengths)."""
    theirs, ours = _words(request.getfixturevalue(source), clips), _words(onnx_words, clips)
    assert [w[:3] for w in ours] == [w[:3] for w in theirs] and len(theirs) > 30
    assert np.allclose([w[3] for w in ours], [w[3] for w in theirs], atol=1e-3)


def test_an_artifact_without_the_alignment_graph_names_the_export_flag(onnx_fp32):
    with pytest.raises(OptionError, match="exported with `python -m exporters whisper --to "
                                          "onnx --word-timestamps`"):
        runtimes.load(onnx_fp32, runtimes.RuntimeOptions(threads=THREADS), WORDS)


def test_subtitles_of_a_long_recording_are_cut_to_size(int8_artifact, speech_rows):
    """The 233 s LJ Speech recording: Whisper's segments run to 9 s (int8); cut at word
    timestamps (--max-subtitle-s 5) every subtitle lasts at most 5 s and the words are the
    same, in order."""
    from runtimes.transcript.formats import split_long

    rows, audio = subset(speech_rows, "longform")
    lj = next(a for r, a in zip(rows, audio) if "ljspeech" in r["path"].lower())
    with runtimes.load(int8_artifact, runtimes.RuntimeOptions(threads=THREADS), WORDS) as model:
        segments = model.transcribe([lj], batch_size=8)[0].segments
    pieces = split_long(segments, 5.0)
    assert max(s.end - s.start for s in segments) > 7 and len(pieces) > len(segments)
    assert all(p.end - p.start <= 5.0 or len(p.words) == 1 for p in pieces)
    assert [w for p in pieces for w in p.words] == [w for s in segments for w in s.words]
