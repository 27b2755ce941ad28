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

from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from runtimes.audio.features import N_SAMPLES
from runtimes.audio.files import SAMPLE_RATE, is_silence
from runtimes.errors import OptionError

#: (start, end) sample indices of one stretch of speech.
Span = tuple[int, int]
#: The spans one window is made of, in order.
Window = tuple[Span, ...]


@dataclass(frozen=True)
class VadSettings:
    """Silero VAD's settings for cutting windows (faster-whisper's ``VadOptions`` names in
    milliseconds; spans are at most 30 s, a window's length). The defaults are
    faster-whisper's batched pipeline's."""

    threshold: float = 0.5
    min_speech_duration_ms: int = 0
    min_silence_duration_ms: int = 160
    speech_pad_ms: int = 400

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise OptionError(f"VAD threshold must be in (0, 1), got {self.threshold!r}")
        for name in ("min_speech_duration_ms", "min_silence_duration_ms", "speech_pad_ms"):
            if not isinstance(getattr(self, name), (int, float)) or getattr(self, name) < 0:
                raise OptionError(f"VAD {name} must be a number >= 0, got "
                                  f"{getattr(self, name)!r}")


#: faster-whisper's batched pipeline's settings, the toolkit's default.
DEFAULT_VAD = VadSettings()


def speech_spans(samples: np.ndarray, vad: VadSettings = DEFAULT_VAD) -> list[Span]:
    """Speech in ``samples``, each span padded and at most 30 s long (faster-whisper's
    batched-pipeline VAD settings by default, through ``runtimes.audio.vad`` for bounded
    memory)."""
    from runtimes.audio.vad import speech_timestamps

    spans = speech_timestamps(samples, vad.threshold, vad.min_speech_duration_ms,
                              max_speech_s=N_SAMPLES / SAMPLE_RATE,
                              min_silence_ms=vad.min_silence_duration_ms,
                              speech_pad_ms=vad.speech_pad_ms)
    return [(s["start"], s["end"]) for s in spans]


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
    """The windows of a recording that arrives in pieces, each with its samples, so a long
    upload is windowed holding ten minutes of it at a time, not the whole recording (a
    3-hour upload is 690 MB of float32).

    A recording of at most ``block_samples`` is windowed as a whole: nothing for silence,
    one window up to 30 s, else packed VAD spans. A longer one is windowed in blocks of
    exactly ``block_samples`` new samples (whatever the size of the pieces, so offline and
    served transcription agree): the VAD runs on each block plus the tail of the previous
    one, kept from the end of the last span that ended at least 30 s before the block's
    end (a span is at most 30 s, so every span ending later is found again, whole, in the
    next pass).

    Iterate for ``(window, samples)``; ``window``'s spans are indices into the whole
    recording. ``n_samples`` counts the samples read so far (all of them once iterated).
    """

    def __init__(self, pieces: Iterable[np.ndarray], block_samples: int = BLOCK_SAMPLES,
                 vad: VadSettings = DEFAULT_VAD) -> None:
        if block_samples < 2 * N_SAMPLES:
            raise ValueError(f"block_samples must be >= {2 * N_SAMPLES} (60 s), got {block_samples}")
        self._pieces = pieces
        self.block = block_samples
        self.vad = vad
        self.n_samples = 0

    def __iter__(self) -> Iterator[tuple[Window, np.ndarray]]:
        packer = _Packer()
        carry, origin, first = np.zeros(0, np.float32), 0, True
        pending: list[np.ndarray] = []
        for piece in self._pieces:
            self.n_samples += piece.shape[-1]
            pending.append(piece)
            while sum(p.shape[-1] for p in pending) > self.block:
                head, pending = _split(pending, self.block)
                buffer = _join([carry, *head])
                del head  # the pieces go once joined, and the block once windowed
                carry, origin = yield from _windows(buffer, origin, packer, self.vad,
                                                    last=False)
                del buffer
                first = False
        buffer, pending = _join([carry, *pending]), []
        if first and is_silence(buffer):
            return
        if first and buffer.size <= N_SAMPLES:
            yield ((0, int(buffer.size)),), buffer
            return
        yield from _windows(buffer, origin, packer, self.vad, last=True)
        yield from packer.flush()


def _windows(buffer: np.ndarray, origin: int, packer: _Packer, vad: VadSettings,
             last: bool) -> Generator[tuple[Window, np.ndarray], None, tuple[np.ndarray, int]]:
    """Pack the finished spans of ``buffer`` (which starts at sample ``origin`` of the
    recording); return the carry for the next block and where it starts."""
    spans = [] if is_silence(buffer) else speech_spans(buffer, vad)
    done = spans if last else [s for s in spans if s[1] <= buffer.size - N_SAMPLES]
    for start, end in done:
        yield from packer.add(origin + start, buffer[start:end])
    rest = spans[len(done):]
    keep = (done[-1][1] if done else rest[0][0] if rest
            else max(0, buffer.size - N_SAMPLES))
    return buffer[keep:].copy(), origin + keep


def _split(pieces: list[np.ndarray], n: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The first ``n`` samples of ``pieces`` and the rest, as lists of pieces (views)."""
    head: list[np.ndarray] = []
    for i, piece in enumerate(pieces):
        if piece.shape[-1] >= n:
            return head + [piece[:n]], ([piece[n:]] if piece.shape[-1] > n else []) + pieces[i + 1:]
        head.append(piece)
        n -= piece.shape[-1]
    return head, []


def _join(parts: list[np.ndarray]) -> np.ndarray:
    """One array of the non-empty parts (the part itself when there is only one)."""
    parts = [p for p in parts if p.size]
    if len(parts) == 1:
        return parts[0]
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


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


def blocks_of(samples: np.ndarray, block: int = BLOCK_SAMPLES) -> Iterator[np.ndarray]:
    """A decoded recording as ``WindowStream`` pieces (views, nothing copied)."""
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
