"""Packed windows on real speech (``transcribe(pack=True)``, ``--pack``): each clip keeps its
own words, a clip whose packed text stops early is decoded again alone, and an artifact
that cannot align words is refused in one line."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import runtimes
from runtimes.audio.files import SAMPLE_RATE, load_audio
from runtimes.errors import OptionError
from runtimes.transcript.packing import pack, plan, unfinished
from runtimes.transcript.segments import Segment
from runtimes.transcript.words import Word
from tests.slow.conftest import subset


def _words(text: str) -> list[str]:
    from bench.metrics import normalizer

    return normalizer("en")(text).split()


def _distance(a: list[str], b: list[str]) -> int:
    import difflib

    matched = sum(m.size for m in difflib.SequenceMatcher(a=a, b=b).get_matching_blocks())
    return max(len(a), len(b)) - matched


def test_each_packed_clip_keeps_its_own_words(ct2_int8, speech_rows):
    rows, audio = subset(speech_rows, "en")
    rows, audio = rows[:12], audio[:12]
    assert len(plan([a.size for a in audio], ["en"] * len(audio))) >= 2  # it does pack
    alone = ct2_int8.transcribe(audio, 8)
    packed = ct2_int8.transcribe(audio, 8, pack=True)
    for clip, by_itself, together in zip(audio, alone, packed):
        own, theirs = _words(by_itself.text), _words(together.text)
        # its own words (a word or two may differ in another context), none of a neighbour's
        assert _distance(own, theirs) <= max(2, len(own) // 5), (by_itself.text, together.text)
        assert together.segments and all(0 <= s.start <= s.end <= clip.size / SAMPLE_RATE
                                         for s in together.segments)
    errors = [sum(_distance(_words(r["reference"]), _words(t.text)) for r, t in zip(rows, run))
              for run in (alone, packed)]
    assert errors[1] <= errors[0] + 2, errors


def test_the_python_batch_call_packs_short_clips_and_not_long_ones(int8_artifact, onnx_int8,
                                                                   speech_rows, jfk):
    """``WhisperModel.transcribe_batch(pack=True)``: fewer windows decoded, each clip its
    own words in faster-whisper's shape, a recording longer than a window as without it."""
    _, audio = subset(speech_rows, "en")
    clips, long = audio[:6], np.concatenate([load_audio(jfk)] * 4)  # 44 s: never packed
    rows: list[int] = []
    with runtimes.WhisperModel(str(int8_artifact), cpu_threads=2) as model:
        decode = model.runtime.decode
        model.runtime.decode = lambda f, p, *a, **k: rows.append(len(p)) or decode(f, p, *a, **k)
        # one temperature: CTranslate2's sampled text depends on its batch (docs/cli.md)
        options = {"beam_size": 1, "word_timestamps": True, "temperature": 0.0}
        plain = model.transcribe_batch(clips + [long], **options)
        unpacked_rows = sum(rows)
        packed = model.transcribe_batch(clips + [long], pack=True, **options)
        assert sum(rows) - unpacked_rows < unpacked_rows - 3  # six clips in two windows
    with runtimes.WhisperModel(str(onnx_int8), cpu_threads=2) as model, \
            pytest.raises(OptionError, match="cannot align words"):
        model.transcribe_batch(clips[:2], pack=True)

    def seen(segments):
        return [(s.start, s.end, s.text, [w.word for w in s.words]) for s in segments]

    assert seen(packed[-1][0]) == seen(plain[-1][0])
    for clip, (alone, _), (together, _) in zip(clips, plain, packed):
        own = _words("".join(s.text for s in alone))
        theirs = _words("".join(s.text for s in together))
        assert _distance(own, theirs) <= max(2, len(own) // 5), (own, theirs)
        assert [s.id for s in together] == list(range(1, len(together) + 1))
        assert all(s.seek == 0 and s.words and 0 <= s.start <= s.end <= clip.size / SAMPLE_RATE
                   for s in together)


def _said_until(seconds: float) -> list[Segment]:
    word = Word(0.0, seconds, " words", 0.9, (1,))
    return [Segment(0.0, seconds, " words", (1,), words=(word,))]


def test_a_clip_whose_words_stop_before_its_speech_does_is_decoded_again(jfk):
    speech = load_audio(jfk)  # speech until about 10.5 s of 11
    quiet = np.concatenate([speech[:2 * SAMPLE_RATE],  # "And so my fellow..." then silence
                            0.001 * np.random.default_rng(1).standard_normal(4 * SAMPLE_RATE)
                            ]).astype(np.float32)
    packed = pack([speech, quiet], [0, 1], "en")
    assert unfinished(packed, [_said_until(3.0), _said_until(1.9)]) == [0]
    assert unfinished(packed, [_said_until(10.6), _said_until(1.9)]) == []
    assert unfinished(packed, [[], []]) == [0, 1]  # no words at all, speech in both


def test_an_artifact_that_cannot_align_is_refused_in_one_line(onnx_int8, jfk):
    done = subprocess.run([sys.executable, "-m", "runtimes", str(onnx_int8), str(jfk), str(jfk),
                           "--pack"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        "error: pack (--pack) gives each clip the words aligned inside it, and this onnx "
        "artifact cannot align words (ONNX, OpenVINO, TorchScript: export with "
        "--word-timestamps)"]
