"""Packing short clips into shared windows: which clips share one, and which clip each
word goes to (runtimes.transcript.packing)."""

import numpy as np

from runtimes.audio.features import N_SAMPLES
from runtimes.audio.files import SAMPLE_RATE
from runtimes.transcript.packing import GAP_SAMPLES, pack, plan, split_segments
from runtimes.transcript.segments import Segment
from runtimes.transcript.words import Word

S = SAMPLE_RATE


def test_consecutive_clips_of_one_language_fill_a_window():
    lengths = [6 * S, 7 * S, 8 * S, 9 * S, 5 * S, 4 * S]
    # 6+7+8 s and two 0.3 s gaps; the 9 s clip would pass 29.5 s
    assert plan(lengths, ["en"] * 6) == [[0, 1, 2], [3, 4, 5]]
    assert plan(lengths, ["en", "de", "en", "de", "en", "de"]) == [[0, 2, 4], [1, 3, 5]]


def test_long_silent_and_lonely_clips_are_left_out():
    assert plan([29 * S, 3 * S, 40 * S, 2 * S], ["en"] * 4) == [[1, 3]]
    assert plan([3 * S, 3 * S, 3 * S], ["en", None, "de"]) == []  # groups of one
    assert plan([N_SAMPLES, 4 * S], ["en", "en"]) == []


def test_a_window_holds_the_clips_in_order_with_a_quiet_gap_between():
    audios = [np.full(S, 0.5, np.float32), np.full(2 * S, -0.5, np.float32)]
    packed = pack(audios, [1, 0], "en")
    assert packed.owners == (1, 0) and packed.offsets == (0, 2 * S + GAP_SAMPLES)
    assert packed.samples.size == 3 * S + GAP_SAMPLES
    gap = packed.samples[2 * S:2 * S + GAP_SAMPLES]
    assert 0 < np.abs(gap).max() < 0.01  # faint noise: digital silence reads as the end
    assert np.array_equal(packed.samples[-S:], audios[0])


def _word(start, end, text, token):
    return Word(start, end, text, 0.9, (token,))


def test_each_word_goes_to_the_clip_it_was_aligned_in():
    audios = [np.zeros(2 * S, np.float32), np.zeros(3 * S, np.float32)]
    packed = pack(audios, [0, 1], "en")  # clip 1 starts at 2.3 s
    words = (_word(0.1, 0.5, " one", 1), _word(1.6, 2.1, " two", 2),  # ends in the gap
             _word(2.2, 2.6, " three", 3), _word(2.7, 3.0, " four", 4))
    segment = Segment(0.1, 3.0, " one two three four", (1, 2, 3, 4), words=words)
    first, second = split_segments(packed, [segment])
    assert [s.text for s in first] == [" one two"] and first[0].tokens == (1, 2)
    assert [s.text for s in second] == [" three four"] and second[0].tokens == (3, 4)
    # in the clip's own seconds, inside it: "three" began 0.1 s before the clip did
    assert second[0].words[0].start == 0.0 and second[0].start == 0.0
    assert abs(second[0].end - 0.7) < 1e-9
    assert first[0].end == 2.0  # "two" ended in the gap: cut at its clip's end
