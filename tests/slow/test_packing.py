"""Packed windows on real speech (``transcribe(pack=True)``, ``--pack``): each clip keeps its
own words, a clip whose packed text stops early is decoded again alone, and an artifact
that cannot align words is refused in one line."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from runtimes.audio.files import SAMPLE_RATE, load_audio
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
