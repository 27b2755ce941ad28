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
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runtimes.audio import limits
from runtimes.audio.limits import SAMPLE_RATE
from runtimes.errors import AudioError

# Peak level under which a recording counts as silence (-60 dBFS). Whisper hallucinates
# on silence ("Thank you."), so silence is answered with an empty transcript instead.
SILENCE_PEAK = 10 ** (-60 / 20)
#: How far the decoded audio of a file with damaged frames may fall short of the duration its
#: container declares before it is refused: max(1 s, 10 %) (declared durations of VBR files
#: are estimates; a skipped MP3 frame is 26 ms).
SHORTFALL_S, SHORTFALL_SHARE = 1.0, 0.10


@dataclass
class AudioReport:
    """What decoding one file found, filled in as it decodes, so that a result can say how
    much of the file it covers (issue 32: a damaged MP3 once decoded to its first half, and
    that half was answered as the whole).

    Attributes:
        decoded_s: seconds of audio decoded.
        declared_s: the duration the container declares (None: it declares none).
        skipped_frames: damaged packets skipped, as FFmpeg's command line skips them.
    """

    decoded_s: float = 0.0
    declared_s: float | None = None
    skipped_frames: int = 0

    def describe(self, label: str) -> str | None:
        """One line for the user when frames were skipped; None for a clean decode."""
        if not self.skipped_frames:
            return None
        declared = "" if self.declared_s is None else f" of the {self.declared_s:.2f} s it declares"
        return (f"{label}: skipped {self.skipped_frames} damaged frame(s); decoded "
                f"{self.decoded_s:.2f} s{declared}")


def load_audio(path: str | Path, max_seconds: float | None = None,
               report: AudioReport | None = None) -> np.ndarray:
    """Decode an audio file to 16 kHz mono float32 in [-1, 1].

    Args:
        path: any file FFmpeg can decode.
        max_seconds: stop decoding past this length (see ``limits.max_decoded_seconds``).
        report: filled in with what decoding found (damaged frames skipped, durations).

    Returns:
        A 1-D float32 array.

    Raises:
        AudioError: the file is missing, a directory, empty (0 bytes), not audio, has no
            samples, or is damaged beyond skipping frames (see ``SHORTFALL_S``).
        AudioTooLongError: it decodes to more than the limit.
    """
    path = Path(path)
    if path.is_dir():
        raise AudioError(f"audio path is a directory, not a file: {path}")
    if not path.is_file():
        raise AudioError(f"audio file not found: {path}")
    size = path.stat().st_size
    if size == 0:
        raise AudioError(f"audio file is empty (0 bytes): {path}")
    return _decode(str(path), str(path), limits.limit_for(size, max_seconds), report)


def load_audio_bytes(data: bytes, name: str = "upload", max_seconds: float | None = None,
                     report: AudioReport | None = None) -> np.ndarray:
    """Decode an in-memory audio file (an HTTP upload) like ``load_audio`` decodes a path.

    Raises:
        AudioError: ``data`` is empty, not audio, or has no samples; ``name`` labels it.
        AudioTooLongError: it decodes to more than the limit.
    """
    if not data:
        raise AudioError(f"audio file is empty (0 bytes): {name}")
    import io

    return _decode(io.BytesIO(data), name, limits.limit_for(len(data), max_seconds), report)


def _decode(source, label: str, limit: tuple[int, str] | None = None,
            report: AudioReport | None = None) -> np.ndarray:
    report = AudioReport() if report is None else report
    try:
        import av  # noqa: F401
    except ImportError:  # a slim GPU image: WAV files still work (see _wav)
        samples = limits.check_length(_wav(source, label), label, limit)
        report.decoded_s = report.declared_s = duration_s(samples)
        return samples
    chunks = list(_pcm16_checked(source, label, limit, report))
    if not chunks:
        raise AudioError(f"audio file has no samples (zero-length): {label}")
    return np.concatenate(chunks).astype(np.float32) / 32768.0


def stream_audio_bytes(data: bytes, name: str = "upload", max_seconds: float | None = None,
                       block_samples: int = 30 * SAMPLE_RATE,
                       report: AudioReport | None = None) -> Iterator[np.ndarray]:
    """``load_audio_bytes`` in blocks of ``block_samples`` float32 samples (the last one
    shorter), decoded as they are consumed: a server windows a 3-hour upload through
    ``runtimes.audio.chunking.WindowStream`` holding ten minutes of it, not 690 MB of float32
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

    report = AudioReport() if report is None else report
    return _blocks(io.BytesIO(data), name, limits.limit_for(len(data), max_seconds), block_samples,
                   report)


def _blocks(source, label: str, limit: tuple[int, str] | None,
            block_samples: int, report: AudioReport) -> Iterator[np.ndarray]:
    try:
        import av  # noqa: F401
    except ImportError:
        samples = limits.check_length(_wav(source, label), label, limit)
        report.decoded_s = report.declared_s = duration_s(samples)
        for start in range(0, samples.size, block_samples):
            yield samples[start:start + block_samples]
        return
    pending: list[np.ndarray] = []
    held = total = 0
    for chunk in _pcm16_checked(source, label, limit, report):
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


def _pcm16_checked(source, label: str, limit: tuple[int, str] | None,
                   report: AudioReport) -> Iterator[np.ndarray]:
    """``_pcm16_chunks`` with FFmpeg's failures as one AudioError line, and a file whose
    damage cost more than skipped frames refused (see ``SHORTFALL_S``)."""
    import av

    try:
        yield from _pcm16_chunks(source, label, limit, report)
    except (av.error.FFmpegError, ValueError, IndexError) as exc:
        # IndexError: the container has no audio stream (e.g. an image or a text file).
        if report.decoded_s and not _short(report):  # the damage is at the very end
            report.skipped_frames += 1
            return
        found = (f"decoding stopped at {report.decoded_s:.2f} s" + (
            f" of the {report.declared_s:.2f} s it declares" if report.declared_s else "")
            + ": ") if report.decoded_s else ""
        raise AudioError(f"not a decodable audio file: {label} ({found}{exc})") from exc
    if report.skipped_frames and _short(report):
        raise AudioError(f"damaged audio file: {label} decodes to {report.decoded_s:.2f} s of "
                         f"the {report.declared_s:.2f} s it declares ({report.skipped_frames} "
                         "damaged frame(s) skipped)")


def _short(report: AudioReport) -> bool:
    """Whether the decoded audio falls short of the declared duration by more than the
    tolerance (an unknown declared duration cannot be checked: True)."""
    if report.declared_s is None:
        return True
    return report.decoded_s < report.declared_s - max(SHORTFALL_S,
                                                      SHORTFALL_SHARE * report.declared_s)


def _pcm16_chunks(source, label: str, limit: tuple[int, str] | None,
                  report: AudioReport) -> Iterator[np.ndarray]:
    """The first audio stream as 16 kHz mono int16 pieces; a packet FFmpeg cannot decode is
    skipped and counted, and decoding goes on after it (as the ffmpeg command does).
    Decoding stops as soon as ``limit`` samples are passed (AudioTooLongError), or before
    it starts when the container declares a duration well past the limit."""
    import av

    with av.open(source, mode="r", metadata_errors="ignore") as container:
        stream = container.streams.audio[0]
        report.declared_s = _declared_s(container, stream)
        limits.check_declared(container.duration, label, limit)
        resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        total = 0
        # Frame by frame (a list would decode everything first); None flushes the resampler.
        for frame in itertools.chain(_valid_frames(container.demux(stream), report), [None]):
            for out in resampler.resample(frame):
                chunk = out.to_ndarray().reshape(-1)
                total += chunk.size
                report.decoded_s = total / SAMPLE_RATE
                limits.check_total(total, label, limit)
                yield chunk


def _declared_s(container, stream) -> float | None:
    """The container's (else the stream's) declared duration in seconds, if any."""
    if container.duration and container.duration > 0:
        return container.duration / 1e6
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    return None


def _valid_frames(packets, report: AudioReport):
    """The frames of each demuxed packet; a packet the decoder rejects is counted in
    ``report`` and skipped. Decoding packet by packet is what lets it go on: an error raised
    inside ``container.decode()``'s generator ends that generator, and with it the file
    (faster-whisper's loop stops there too)."""
    import av

    for packet in packets:
        try:
            frames = packet.decode()
        except av.error.InvalidDataError:
            report.skipped_frames += 1
            continue
        yield from frames


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
