import numpy as np

from runtimes.chunking import pack_spans, split_spans, window_audio


def test_spans_pack_without_their_pauses_into_windows_of_at_most_max_len():
    spans = [(0, 10), (12, 20), (25, 40), (41, 45), (60, 70)]
    # speech 10 + 8 + 15 = 33 > 30: the third span starts a window; the pauses do not count
    assert pack_spans(spans, max_len=30) == [((0, 10), (12, 20)), ((25, 40), (41, 45), (60, 70))]


def test_a_span_longer_than_a_window_is_cut_and_no_speech_gives_no_windows():
    assert pack_spans([(0, 70), (71, 75)], max_len=30) == [
        ((0, 30),), ((30, 60),), ((60, 70), (71, 75))]
    assert pack_spans([], max_len=30) == []


def test_a_window_joins_its_spans_and_short_audio_is_one_window():
    samples = np.arange(100, dtype=np.float32)
    joined = window_audio(samples, ((0, 3), (10, 12)))
    assert joined.tolist() == [0, 1, 2, 10, 11]
    assert split_spans(samples) == [((0, 100),)]
