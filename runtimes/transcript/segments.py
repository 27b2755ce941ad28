"""Segments of a transcript: a window's timestamp tokens -> (start, end, text) on the
recording's own time line.

A window decoded with timestamps reads ``<|0.00|> text <|2.40|><|2.40|> text <|5.12|>``:
each pair of consecutive timestamps closes one segment and opens the next (openai/whisper's
rule, which faster-whisper and CTranslate2 share). Text after the last timestamp, or a
window with no pair at all, is one segment ending at the window's end. A window is packed
VAD speech (``runtimes.audio.chunking``) with the pauses between its spans cut out, so a time in
the window maps back to the recording through its spans, as faster-whisper's
``restore_speech_timestamps`` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from runtimes.audio.chunking import Window
from runtimes.audio.files import SAMPLE_RATE
from runtimes.base import Decoded
from runtimes.decode.fallback import compression_ratio
from runtimes.decode.filters import TIME_PRECISION
from runtimes.transcript.words import Word, assign


@dataclass(frozen=True)
class Segment:
    """A stretch of the recording and what was said in it.

    Attributes:
        start, end: seconds from the start of the recording.
        text: the segment's text.
        tokens: its text token ids (timestamp tokens excluded).
        compression_ratio: gzip ratio of the text (faster-whisper's repetition signal: above
            2.4 the decoding is likely a loop).
        avg_logprob, no_speech_prob, temperature: of the window the segment was decoded in
            (as openai/whisper and faster-whisper report them); nan when the decoding was
            not scored (text-only).
        words: its words with their times, with ``word_timestamps`` (else empty).
    """

    start: float
    end: float
    text: str
    tokens: tuple[int, ...]
    compression_ratio: float = 0.0
    avg_logprob: float = float("nan")
    no_speech_prob: float = float("nan")
    temperature: float = 0.0
    words: tuple[Word, ...] = ()


@dataclass(frozen=True)
class WindowText:
    """What one decoded window adds to its input's transcript (the lazy loops yield these).

    Attributes:
        owner: the input's index among the call's inputs.
        start: the window's first sample in its input (faster-whisper's ``seek``, in
            samples).
        tokens: the generated ids kept (prompt and end token excluded).
        segments: its segments, times from the start of the input.
    """

    owner: int
    start: int
    tokens: list[int]
    segments: list[Segment]


@dataclass(frozen=True)
class AudioWindow:
    """One <= 30 s window to decode: its input, where its speech lies there, its samples."""

    owner: int  # index of the input this window belongs to
    spans: Window  # where its speech lies in the input (a packed window: all of it)
    samples: np.ndarray
    index: int = 0  # its place among its input's windows (seeds sampling)


def window_duration(window: Window) -> float:
    """Seconds of speech in a window (its spans, pauses excluded)."""
    return sum(end - start for start, end in window) / SAMPLE_RATE


def split_tokens(tokens: Sequence[int], timestamp_begin: int,
                 duration: float) -> list[tuple[float, float, list[int]]]:
    """(start, end, text ids) of each segment of one window's ids, in window seconds.

    ``duration``: the window's length, the end of a segment left open. A window decoded
    without timestamps is one segment.
    """
    pieces: list[tuple[float, float, list[int]]] = []
    start: float | None = None
    text: list[int] = []
    for i, token in enumerate(tokens):
        if token < timestamp_begin:
            text.append(token)
            continue
        time = (token - timestamp_begin) * TIME_PRECISION
        if start is None:
            start = time
        elif i > 0 and tokens[i - 1] >= timestamp_begin and not text:
            start = time  # the opening half of a pair: the next segment starts here
        else:
            pieces.append((start, time, text))
            start, text = time, []
    if text or not pieces:
        pieces.append((start or 0.0, max(duration, start or 0.0), text))
    return [p for p in pieces if p[2]]


def to_recording(window: Window, seconds: float, is_end: bool = False) -> float:
    """A time in the window's joined speech -> seconds in the recording."""
    sample = seconds * SAMPLE_RATE
    offset = 0
    for start, end in window:
        length = end - start
        if sample < offset + length or (is_end and sample <= offset + length):
            return (start + sample - offset) / SAMPLE_RATE
        offset += length
    return window[-1][1] / SAMPLE_RATE


def window_segments(window: Window, tokens: Sequence[int], timestamp_begin: int,
                    decode) -> list[Segment]:
    """The segments of one decoded window on the recording's time line; ``decode`` turns
    ids into text (the tokenizer's)."""
    out = []
    for start, end, ids in split_tokens(tokens, timestamp_begin, window_duration(window)):
        text = decode(ids)
        if text:
            out.append(Segment(round(to_recording(window, start), 3),
                               round(to_recording(window, end, is_end=True), 3), text,
                               tuple(ids), compression_ratio(text)))
    return out


def segments_of(window: Window, decoded: Decoded, tokenizer, timestamps: bool) -> list[Segment]:
    """A decoded window's segments: split at its timestamp tokens when it was decoded with
    timestamps, else the whole window as one segment (its first span's start to its last
    span's end); each carries the window's scores."""
    tokens = decoded.tokens
    if timestamps:
        found = window_segments(window, tokens, tokenizer.timestamp_begin, tokenizer.decode)
    else:
        text = tokenizer.decode(list(tokens))
        found = [Segment(round(window[0][0] / SAMPLE_RATE, 3),
                         round(window[-1][1] / SAMPLE_RATE, 3), text, tuple(tokens),
                         compression_ratio(text))] if text else []
    return [replace(s, avg_logprob=decoded.avg_logprob, no_speech_prob=decoded.no_speech_prob,
                    temperature=decoded.temperature) for s in found]


def attach_words(window: Window, segments: list[Segment], words: list[Word]) -> list[Segment]:
    """A window's segments with their words (times in window seconds) placed on the
    recording's time line; a segment with words starts at its first word and ends at its
    last, as faster-whisper sets them.

    Why: a segment's timestamp tokens are 20 ms steps the model places less precisely than
    the alignment does, and the first segment of a VAD window began at the window's padded
    start, up to 400 ms before the speech (segment starts on word-by-word speech: median
    error 388 ms against faster-whisper's 297).
    """
    groups = assign(words, [len(s.tokens) for s in segments])
    out = []
    for segment, group in zip(segments, groups):
        placed = tuple(replace(w, start=round(to_recording(window, w.start), 3),
                               end=round(to_recording(window, w.end, is_end=True), 3))
                       for w in group)
        if placed:
            segment = replace(segment, start=placed[0].start,
                              end=max(placed[-1].end, placed[0].start))
        out.append(replace(segment, words=placed))
    return out


def assemble(window: Window, decoded: Decoded, tokenizer, timestamps: bool,
             words: list[Word] | None = None) -> list[Segment]:
    """A decoded window's segments on the recording's time line, with its words when it
    was aligned: the one assembly step of the offline pipeline, sequential long-form
    decoding and the server, so their segments cannot drift apart."""
    parts = segments_of(window, decoded, tokenizer, timestamps)
    return parts if words is None else attach_words(window, parts, words)
