"""Timestamp tokens -> segments on the recording's time line, and Whisper's timestamp rules."""

import numpy as np

from runtimes.decode.filters import TimestampRules, build_chain
from runtimes.transcript.formats import srt, tsv
from runtimes.transcript.segments import Segment, split_tokens, to_recording, window_segments

TB = 1000  # the first timestamp token in these examples: <|0.00|>
EOT = 900


def t(seconds: float) -> int:
    return TB + round(seconds / 0.02)


def test_pairs_close_and_open_segments_and_trailing_text_ends_at_the_window():
    tokens = [t(0), 1, 2, t(2.4), t(2.4), 3, t(5.0), t(5.2), 4]
    assert split_tokens(tokens, TB, 9.0) == [
        (0.0, 2.4, [1, 2]), (2.4, 5.0, [3]), (5.2, 9.0, [4])]
    assert split_tokens([1, 2], TB, 7.5) == [(0.0, 7.5, [1, 2])]  # no timestamps
    assert split_tokens([t(0), 5, t(3)], TB, 30.0) == [(0.0, 3.0, [5])]  # single ending


def test_sequential_decoding_seeks_to_the_last_complete_segment():
    """openai/whisper's rule: a window that ends inside a segment keeps its complete
    segments and the next starts at the last one's end (frames of 10 ms); a single closing
    timestamp, or no pair, moves a whole window; a pair at 0 cannot stall decoding."""
    from runtimes.transcript.sequential import seek_step

    cut = [t(0), 1, t(2.4), t(2.4), 3, t(5.0), t(5.0), 4, 5]
    assert seek_step(cut, TB, 3000) == (cut[:6], 500)
    closed = [t(0), 1, t(2.4), t(2.4), 3, t(5.0)]
    assert seek_step(closed, TB, 3000) == (closed, 3000)
    assert seek_step([t(0), 1, 2], TB, 3000) == ([t(0), 1, 2], 3000)
    assert seek_step([], TB, 1200) == ([], 1200)  # silence: the window is skipped
    assert seek_step([t(0), t(0), 1], TB, 3000) == ([t(0), t(0), 1], 3000)
    assert seek_step(cut, TB, 400) == (cut[:6], 400)  # never past the window


def test_window_times_map_back_through_the_speech_spans():
    window = ((16000, 48000), (80000, 96000))  # 1-3 s and 5-6 s, joined: 3 s of speech
    assert to_recording(window, 0.5) == 1.5
    assert to_recording(window, 2.0) == 5.0  # the second span starts at 2 s of speech
    assert to_recording(window, 2.0, is_end=True) == 3.0  # an end stays in the first span
    assert to_recording(window, 9.0) == 6.0  # past the speech: the window's end
    segments = window_segments(window, [t(0), 7, t(2.0), t(2.0), 8, t(3.0)], TB,
                               lambda ids: " ".join(map(str, ids)))
    assert [(s.start, s.end, s.text) for s in segments] == [(1.0, 3.0, "7"), (5.0, 6.0, "8")]


def test_subtitles_skip_empty_segments():
    text = srt([Segment(0.0, 1.5, "Hi.", (1,)), Segment(1.5, 2.0, "", ())])
    assert text == "1\n00:00:00,000 --> 00:00:01,500\nHi.\n"


def test_tsv_is_openai_whispers_milliseconds_and_text():
    """openai-whisper's --output_format tsv: header, integer ms, no tab inside the text."""
    segments = [Segment(0.0, 1.5, "Hi.", (1,)), Segment(1.5, 2.0, "", ()),
                Segment(2.002, 3.25, "a\tb", (2,))]
    assert tsv(segments) == "start\tend\ttext\n0\t1500\tHi.\n2002\t3250\ta b\n"


def _rules(max_initial_index=50):
    return TimestampRules(EOT, TB - 1, TB, max_initial_index)


def _logits(rows=1, vocab=TB + 1501):
    return np.zeros((rows, vocab), np.float32)


def test_the_first_token_is_a_timestamp_within_the_first_second():
    logits = _logits()
    logits[0, 5] = 10.0  # a text token the model prefers
    _rules().apply(logits, [[]])
    allowed = np.flatnonzero(np.isfinite(logits[0]))
    assert allowed.min() == TB and allowed.max() == TB + 50


def test_timestamps_come_in_pairs_and_never_go_back():
    rules = _rules()
    after_text = _logits()
    rules.apply(after_text, [[t(1.0), 5, 6]])  # text after an opening timestamp
    assert np.isneginf(after_text[0, TB:t(1.0) + 1]).all()  # no earlier or equal timestamp
    assert np.isfinite(after_text[0, t(1.02)])
    lone = _logits()
    rules.apply(lone, [[t(1.0), 5, t(2.0)]])  # a closing timestamp: the next one or eot
    assert np.isneginf(lone[0, :EOT]).all() and np.isfinite(lone[0, t(2.0)])
    assert np.isneginf(lone[0, TB:t(2.0)]).all()
    pair = _logits()
    rules.apply(pair, [[t(1.0), 5, t(2.0), t(2.0)]])  # after a pair: text
    assert np.isneginf(pair[0, TB:]).all()
    assert np.isneginf(pair[0, TB - 1])  # <|notimestamps|> never


def test_timestamps_win_when_together_they_beat_every_text_token():
    logits = _logits()
    logits[0, 5] = 3.0  # one text token at e^3 ~ 20 against 1500 timestamps at e^0
    _rules().apply(logits, [[t(0.0), 5, 6]])
    assert np.isneginf(logits[0, :TB]).all()


def test_the_chain_applies_blank_then_suppress_list_then_timestamps():
    chain = build_chain(EOT, (7,), (220, EOT), True, _rules())
    logits = _logits(2)
    logits[:, 220] = 10.0  # likelier than all timestamps together: text may follow
    chain.apply(logits, [[], [t(0.0), 5]])
    assert np.isneginf(logits[:, 7]).all()
    assert np.isneginf(logits[0, [220, EOT]]).all() and np.isfinite(logits[1, 220])
    assert [type(f).__name__ for f in chain.filters] == [
        "SuppressBlank", "SuppressTokens", "TimestampRules"]


def test_control_tokens_are_never_generated_whatever_the_config_suppresses():
    """A fine-tuned checkpoint whose config suppresses nothing: <|startoftranscript|>
    through <|notimestamps|> are suppressed all the same, and without timestamps every
    timestamp too; with timestamps, the timestamp rules decide them."""
    from runtimes.base import DecodingOptions
    from runtimes.decode.step import SuppressRules

    rules = SuppressRules.of({"eos_token_id": EOT, "suppress_tokens": [],
                              "decoder_start_token_id": EOT + 1, "no_timestamps_token_id": TB - 1})
    text = _logits()
    rules.chain(DecodingOptions()).apply(text, [[5]])
    assert np.isneginf(text[0, EOT + 1:]).all() and np.isfinite(text[0, :EOT + 1]).all()
    stamped = _logits()
    stamped[0, 5] = 20.0  # text likelier than the timestamps together
    rules.chain(DecodingOptions(timestamps=True)).apply(stamped, [[t(0.0), 5]])
    assert np.isneginf(stamped[0, EOT + 1:TB]).all() and np.isfinite(stamped[0, t(0.02)])
    assert rules.listed(DecodingOptions(), TB + 1501) == list(range(EOT + 1, TB + 1501))


def test_long_segments_are_cut_at_words_preferring_punctuation():
    from runtimes.transcript.formats import split_long
    from runtimes.transcript.words import Word

    words = tuple(Word(float(i), i + 0.8, f" w{i}" + ("," if i == 3 else ""), 0.9, (i,))
                  for i in range(10))  # 10 words, one per second, a comma after the 4th
    long = Segment(0.0, 9.8, " ".join(w.word.strip() for w in words), tuple(range(10)),
                   words=words)
    short = Segment(10.0, 12.0, "Short.", (99,))
    pieces = split_long([long, short], 6.0)
    assert [(p.start, p.end) for p in pieces] == [(0.0, 3.8), (4.0, 9.8), (10.0, 12.0)]
    assert pieces[0].text == "w0 w1 w2 w3," and pieces[0].tokens == (0, 1, 2, 3)
    assert all(p.end - p.start <= 6.0 for p in pieces)
    assert split_long([replace_words(long)], 6.0) == [replace_words(long)]  # no words: kept


def replace_words(segment):
    from dataclasses import replace

    return replace(segment, words=())


def test_a_segment_with_words_spans_its_first_to_its_last_word():
    """As faster-whisper: the alignment's times, not the timestamp tokens (nor the VAD
    window's padded start) bound a segment with words; one without words keeps its own."""
    from runtimes.transcript.segments import attach_words
    from runtimes.transcript.words import Word

    window = ((16000, 16000 + 5 * 16000),)  # 5 s of speech starting 1 s in
    segments = [Segment(1.0, 3.0, "a b", (5, 6)), Segment(3.0, 6.0, "c", (7,)),
                Segment(6.0, 6.0, "", ())]
    words = [Word(0.42, 0.9, " a", 0.9, (5,)), Word(1.0, 1.7, " b", 0.9, (6,)),
             Word(2.2, 3.1, " c", 0.9, (7,))]
    placed = attach_words(window, segments, words)
    assert [(s.start, s.end) for s in placed] == [(1.42, 2.7), (3.2, 4.1), (6.0, 6.0)]
    assert [w.word for w in placed[0].words] == [" a", " b"] and placed[2].words == ()
