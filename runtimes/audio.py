"""Audio files -> 16 kHz mono float32, the only input the models accept.

Decoding goes through PyAV (FFmpeg), so wav, flac, mp3, ogg and any sample rate or channel
count work. It produces exactly the samples of faster-whisper's ``decode_audio`` (s16 mono
16 kHz through FFmpeg's resampler, tested), so the toolkit and the faster-whisper reference
row see the very same input, but without the full garbage collection that function runs
after every file: in a server that collection holds the GIL for milliseconds on every
request, and decoding a typical clip took 25 ms with it against 8 ms without.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from runtimes.errors import AudioError

SAMPLE_RATE = 16000
# Peak level under which a recording counts as silence (-60 dBFS). Whisper hallucinates
# on silence ("Thank you."), so silence is answered with an empty transcript instead.
SILENCE_PEAK = 10 ** (-60 / 20)
#: Fewest bytes of upload per second of decoded audio that real speech files have: Opus, the
#: leanest codec FFmpeg decodes, needs 6 kbit/s = 750 bytes/s. A 1 Hz WAV of 21.6 KB claims
#: 3 hours (2 bytes/s) and decoded to 2.4 GB in a server; at 64 bytes/s it stops at 337 s.
MIN_BYTES_PER_SECOND = 64


class AudioTooLongError(AudioError):
    """The audio decodes to more than the caller allows; decoding stopped there."""


def load_audio(path: str | Path, max_seconds: float | None = None) -> np.ndarray:
    """Decode an audio file to 16 kHz mono float32 in [-1, 1].

    Args:
        path: any file FFmpeg can decode.
        max_seconds: stop decoding past this length (see ``max_decoded_seconds``).

    Returns:
        A 1-D float32 array.

    Raises:
        AudioError: the file is missing, empty (0 bytes), not audio, or has no samples.
        AudioTooLongError: it decodes to more than the limit.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"audio file not found: {path}")
    size = path.stat().st_size
    if size == 0:
        raise AudioError(f"audio file is empty (0 bytes): {path}")
    return _decode(str(path), str(path), _limit(size, max_seconds))


def load_audio_bytes(data: bytes, name: str = "upload",
                     max_seconds: float | None = None) -> np.ndarray:
    """Decode an in-memory audio file (an HTTP upload) like ``load_audio`` decodes a path.

    Raises:
        AudioError: ``data`` is empty, not audio, or has no samples; ``name`` labels it.
        AudioTooLongError: it decodes to more than the limit.
    """
    if not data:
        raise AudioError(f"audio file is empty (0 bytes): {name}")
    import io

    return _decode(io.BytesIO(data), name, _limit(len(data), max_seconds))


def max_decoded_seconds(n_bytes: int, max_seconds: float | None) -> float | None:
    """The most audio a file of ``n_bytes`` may decode to: ``max_seconds`` where given, and
    never more than one second per MIN_BYTES_PER_SECOND bytes (a decompression bomb's
    claimed hours stop there). None: no limit (local files the caller trusts)."""
    if max_seconds is None:
        return None
    return min(max_seconds, n_bytes / MIN_BYTES_PER_SECOND)


def _limit(n_bytes: int, max_seconds: float | None) -> tuple[int, str] | None:
    """(most samples, why) for ``_decode``; None without a limit."""
    seconds = max_decoded_seconds(n_bytes, max_seconds)
    if seconds is None:
        return None
    why = (f"the limit is {max_seconds:g} s" if seconds == max_seconds else
           f"a {n_bytes}-byte file may hold at most {seconds:.0f} s (1 s per "
           f"{MIN_BYTES_PER_SECOND} bytes; real speech codecs need 750 or more)")
    return int(seconds * SAMPLE_RATE), why


def _decode(source, label: str, limit: tuple[int, str] | None = None) -> np.ndarray:
    try:
        import av  # noqa: F401
    except ImportError:  # a slim GPU image: WAV files still work (see _wav)
        return _check_length(_wav(source, label), label, limit)
    chunks = list(_pcm16_checked(source, label, limit))
    if not chunks:
        raise AudioError(f"audio file has no samples (zero-length): {label}")
    return np.concatenate(chunks).astype(np.float32) / 32768.0


def stream_audio_bytes(data: bytes, name: str = "upload", max_seconds: float | None = None,
                       block_samples: int = 30 * SAMPLE_RATE) -> Iterator[np.ndarray]:
    """``load_audio_bytes`` in blocks of ``block_samples`` float32 samples (the last one
    shorter), decoded as they are consumed: a server windows a 3-hour upload through
    ``runtimes.chunking.WindowStream`` holding ten minutes of it, not 690 MB of float32
    (issue 15). The same samples as ``load_audio_bytes``.

    Raises (while iterating): the errors of ``load_audio_bytes``; AudioTooLongError only
    once decoding passes the limit, after the blocks before it were yielded, unless the
    container already declares a longer duration.
    """
    if not data:
        raise AudioError(f"audio file is empty (0 bytes): {name}")
    if block_samples < 1:
        raise ValueError(f"block_samples must be >= 1, got {block_samples}")
    import io

    return _blocks(io.BytesIO(data), name, _limit(len(data), max_seconds), block_samples)


def _blocks(source, label: str, limit: tuple[int, str] | None,
            block_samples: int) -> Iterator[np.ndarray]:
    try:
        import av  # noqa: F401
    except ImportError:
        samples = _check_length(_wav(source, label), label, limit)
        for start in range(0, samples.size, block_samples):
            yield samples[start:start + block_samples]
        return
    pending: list[np.ndarray] = []
    held = total = 0
    for chunk in _pcm16_checked(source, label, limit):
        pending.append(chunk)
        held += chunk.size
        total += chunk.size
        while held >= block_samples:
            joined = np.concatenate(pending)
            yield joined[:block_samples].astype(np.float32) / 32768.0
            pending, held = [joined[block_samples:]], joined.size - block_samples
    if total == 0:
        raise AudioError(f"audio file has no samples (zero-length): {label}")
    if held:
        yield np.concatenate(pending).astype(np.float32) / 32768.0


def _pcm16_checked(source, label: str, limit: tuple[int, str] | None) -> Iterator[np.ndarray]:
    """``_pcm16_chunks`` with FFmpeg's failures as one AudioError line."""
    import av

    try:
        yield from _pcm16_chunks(source, label, limit)
    except (av.error.FFmpegError, ValueError, IndexError) as exc:
        # IndexError: the container has no audio stream (e.g. an image or a text file).
        raise AudioError(f"not a decodable audio file: {label} ({exc})") from exc


def _pcm16_chunks(source, label: str = "",
                  limit: tuple[int, str] | None = None) -> Iterator[np.ndarray]:
    """The first audio stream as 16 kHz mono int16 pieces, frames FFmpeg cannot decode
    skipped; decoding stops as soon as ``limit`` samples are passed (AudioTooLongError), or
    before it starts when the container declares a duration well past the limit."""
    import av

    with av.open(source, mode="r", metadata_errors="ignore") as container:
        stream = container.streams.audio[0]
        _check_declared(container.duration, label, limit)
        resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        total = 0
        # Frame by frame (a list would decode everything first); None flushes the resampler.
        for frame in itertools.chain(_valid_frames(container.decode(stream)), [None]):
            for out in resampler.resample(frame):
                chunk = out.to_ndarray().reshape(-1)
                total += chunk.size
                _check_total(total, label, limit)
                yield chunk


def _check_declared(duration_us: int | None, label: str, limit: tuple[int, str] | None) -> None:
    """Refuse at once a container whose header declares more than 1.1x the limit (declared
    durations of VBR files are estimates, hence the slack; the decoded count still rules),
    so a long upload is not transcribed for minutes only to be refused at its end."""
    if limit is None or duration_us is None or duration_us <= 0:
        return
    declared = duration_us / 1e6
    if declared * SAMPLE_RATE > 1.1 * limit[0]:
        raise AudioTooLongError(f"audio longer than allowed: {label} declares {declared:.0f} s, "
                                f"more than {limit[0] / SAMPLE_RATE:.0f} s ({limit[1]})")


def _check_total(total: int, label: str, limit: tuple[int, str] | None) -> None:
    if limit is not None and total > limit[0]:
        raise AudioTooLongError(f"audio longer than allowed: {label} decodes to more than "
                                f"{limit[0] / SAMPLE_RATE:.0f} s ({limit[1]})")


def _check_length(samples: np.ndarray, label: str, limit: tuple[int, str] | None) -> np.ndarray:
    _check_total(samples.size, label, limit)
    return samples


def _valid_frames(frames):
    """Decoded frames, skipping the ones FFmpeg reports as invalid (as faster-whisper does)."""
    import av

    iterator = iter(frames)
    while True:
        try:
            yield next(iterator)
        except StopIteration:
            return
        except av.error.InvalidDataError:
            continue


def _wav(source, label: str) -> np.ndarray:
    """PCM WAV without PyAV: the standard library's reader, channels averaged, other rates
    resampled with scipy's polyphase filter. The samples then differ slightly from FFmpeg's
    resampler (16 kHz files are identical), so figures made this way say so."""
    import wave

    try:
        with wave.open(source, "rb") as w:
            rate, channels, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
            data = w.readframes(w.getnframes())
    except (wave.Error, EOFError) as exc:
        raise AudioError(f"not a decodable audio file: {label} (PyAV is not installed, so "
                         f"only PCM WAV can be read: {exc})") from exc
    if width != 2:
        raise AudioError(f"{label}: {8 * width}-bit WAV needs PyAV (`pip install av`)")
    samples = np.frombuffer(data, "<i2").reshape(-1, channels).mean(axis=1) / 32768.0
    if samples.size == 0:
        raise AudioError(f"audio file has no samples (zero-length): {label}")
    if rate != SAMPLE_RATE:
        from math import gcd

        from scipy.signal import resample_poly

        g = gcd(rate, SAMPLE_RATE)
        samples = resample_poly(samples, SAMPLE_RATE // g, rate // g)
    return np.clip(samples, -1.0, 1.0).astype(np.float32)


def pyav_available() -> bool:
    """Whether audio of any format can be decoded (else PCM WAV only)."""
    import importlib.util

    return importlib.util.find_spec("av") is not None


def is_silence(samples: np.ndarray) -> bool:
    """True when the whole signal stays below -60 dBFS."""
    # max and min rather than abs(): no copy of a 10-minute block (38 MB)
    return samples.size == 0 or max(float(samples.max()), -float(samples.min())) < SILENCE_PEAK


def duration_s(samples: np.ndarray) -> float:
    """Length of 16 kHz samples in seconds."""
    return samples.shape[-1] / SAMPLE_RATE
