"""Cut recordings longer than Whisper's 30 s window into windows of speech found by Silero VAD.

As faster-whisper's batched pipeline does (``BatchedInferencePipeline`` with
``collect_chunks``): speech spans are found with short pauses allowed to split them (160 ms)
and 400 ms of padding, then packed, without the pauses between them, into windows of at most
30 s. A window is therefore a list of spans, not one stretch of the recording. Measured on
the `longform` subset (tiny.en, batch 8): 14 windows instead of 17 with the former cut
(pauses >= 500 ms, 200 ms padding, contiguous windows of <= 29 s), and WER 5.28% instead of
5.50% for ONNX fp32, 5.06% instead of 5.17% for ONNX int8. The VAD model is the one
faster-whisper ships.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from runtimes.audio import SAMPLE_RATE, is_silence
from runtimes.features import N_SAMPLES

#: (start, end) sample indices of one stretch of speech.
Span = tuple[int, int]
#: The spans one window is made of, in order.
Window = tuple[Span, ...]


def speech_spans(samples: np.ndarray) -> list[Span]:
    """Speech in ``samples``, each span padded and at most 30 s long (faster-whisper's
    batched-pipeline VAD settings)."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    options = VadOptions(
        max_speech_duration_s=N_SAMPLES / SAMPLE_RATE, min_silence_duration_ms=160, speech_pad_ms=400
    )
    return [(s["start"], s["end"]) for s in get_speech_timestamps(samples, options)]


def pack_spans(spans: list[Span], max_len: int = N_SAMPLES) -> list[Window]:
    """Greedily pack consecutive spans into windows whose speech totals at most ``max_len``
    samples; a span longer than ``max_len`` (the VAD never makes one) is cut. (``_Packer``
    without the samples.)"""
    packer = _Packer(max_len)
    windows = [w for start, end in spans
               for w, _ in packer.add(start, np.empty(end - start, np.bool_))]
    return windows + [w for w, _ in packer.flush()]


#: Long recordings are windowed block by block (see ``WindowStream``): ten minutes, so every
#: recording up to that length is one block and windowed exactly as a whole.
BLOCK_SAMPLES = 600 * SAMPLE_RATE


class WindowStream:
    """The windows of a recording that arrives in blocks, each with its samples, so a long
    upload is windowed holding one block and the unfinished speech before it, not the
    whole recording (a 3-hour upload is 690 MB of float32).

    A single block is windowed as a whole: nothing for silence, one window up to 30 s,
    else packed VAD spans. Over several blocks the VAD runs on each block plus the tail of
    the previous one, from the end of the last span that ended at least 30 s before the
    block's end (a span is at most 30 s, so every span ending later is found again, whole,
    in the next pass). Offline and served transcription both window through this class, so
    they agree on any length.

    Iterate for ``(window, samples)``; ``window``'s spans are indices into the whole
    recording. ``n_samples`` counts the samples read so far (all of them once iterated).
    """

    def __init__(self, blocks: Iterable[np.ndarray]) -> None:
        self._blocks = blocks
        self.n_samples = 0

    def __iter__(self) -> Iterator[tuple[Window, np.ndarray]]:
        packer = _Packer()
        buffer, origin, first = np.zeros(0, np.float32), 0, True
        for block, last in _with_last(self._blocks):
            self.n_samples += block.shape[-1]
            buffer = block if buffer.size == 0 else np.concatenate([buffer, block])
            if first and last:
                if is_silence(buffer):
                    return
                if buffer.size <= N_SAMPLES:
                    yield ((0, int(buffer.size)),), buffer
                    return
            first = False
            spans = [] if is_silence(buffer) else speech_spans(buffer)
            done = spans if last else [s for s in spans if s[1] <= buffer.size - N_SAMPLES]
            for start, end in done:
                yield from packer.add(origin + start, buffer[start:end])
            if last:
                break
            rest = spans[len(done):]
            keep = (done[-1][1] if done else rest[0][0] if rest
                    else max(0, buffer.size - N_SAMPLES))
            origin += keep
            buffer = buffer[keep:].copy()
        yield from packer.flush()


class _Packer:
    """``pack_spans`` one span at a time, holding the samples of the window being filled."""

    def __init__(self, max_len: int = N_SAMPLES) -> None:
        self.max_len = max_len
        self.spans: list[Span] = []
        self.parts: list[np.ndarray] = []
        self.used = 0

    def add(self, start: int, samples: np.ndarray) -> Iterator[tuple[Window, np.ndarray]]:
        for cut in range(0, samples.size, self.max_len):
            piece = samples[cut:cut + self.max_len].copy()
            if self.spans and self.used + piece.size > self.max_len:
                yield from self.flush()
            self.spans.append((start + cut, start + cut + piece.size))
            self.parts.append(piece)
            self.used += piece.size

    def flush(self) -> Iterator[tuple[Window, np.ndarray]]:
        if self.spans:
            joined = self.parts[0] if len(self.parts) == 1 else np.concatenate(self.parts)
            yield tuple(self.spans), joined
        self.spans, self.parts, self.used = [], [], 0


def _with_last(blocks: Iterable[np.ndarray]) -> Iterator[tuple[np.ndarray, bool]]:
    """Each block with whether it is the last (one block of lookahead)."""
    iterator = iter(blocks)
    current = next(iterator, None)
    while current is not None:
        following = next(iterator, None)
        yield current, following is None
        current = following


def blocks_of(samples: np.ndarray, block: int = BLOCK_SAMPLES) -> Iterator[np.ndarray]:
    """A decoded recording as ``WindowStream`` blocks (views, nothing copied)."""
    for start in range(0, max(int(samples.shape[-1]), 1), block):
        yield samples[start:start + block]


def split_spans(samples: np.ndarray) -> list[Window]:
    """The windows ``split_windows`` cuts, as spans."""
    return [window for window, _ in WindowStream(blocks_of(samples))]


def window_audio(samples: np.ndarray, window: Window) -> np.ndarray:
    """The samples of ``window``'s spans, joined."""
    if len(window) == 1:
        start, end = window[0]
        return samples[start:end]
    return np.concatenate([samples[start:end] for start, end in window])


def split_windows(samples: np.ndarray) -> list[np.ndarray]:
    """Audio of at most 30 s as one window; longer audio as packed speech of <= 30 s each;
    nothing for silence or a long recording without speech (see ``WindowStream``)."""
    return [audio for _, audio in WindowStream(blocks_of(samples))]
