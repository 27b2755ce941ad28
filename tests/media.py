"""Damaged and deceptive audio files made from the real clips, for the bad-input tests."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from tests.conftest import SPEECH


def damaged_mp3(out: Path, start: float = 0.5, length: int = 400) -> Path:
    """JFK's MP3 (11 s) with ``length`` random bytes from ``start`` (a share of the file):
    the probe of issue 32 (400 bytes in the middle), whose rest was once dropped unsaid."""
    data = bytearray((SPEECH / "jfk" / "jfk.mp3").read_bytes())
    at = int(len(data) * start)
    data[at:at + length] = np.random.default_rng(0).integers(0, 256, length, np.uint8).tobytes()
    out.write_bytes(bytes(data))
    return out


def ogg_claiming(out: Path, hours: float) -> Path:
    """JFK as Ogg Opus whose last page's granule position claims ``hours`` (a header that
    lies about the length; its CRC is recomputed so FFmpeg believes it)."""
    import io

    import av

    from runtimes.audio.files import load_audio

    samples = (load_audio(SPEECH / "jfk" / "jfk.flac") * 32767).astype(np.int16)
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="ogg") as container:
        stream = container.add_stream("libopus", rate=48000)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(samples[None], format="s16", layout="mono")
        frame.sample_rate = 16000
        for resampled in av.AudioResampler(format="s16", layout="mono", rate=48000).resample(
                frame):
            for packet in stream.encode(resampled):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    data = bytearray(buffer.getvalue())
    last = data.rfind(b"OggS")
    data[last + 6:last + 14] = struct.pack("<q", int(hours * 3600 * 48000))
    data[last + 22:last + 26] = b"\0\0\0\0"
    data[last + 22:last + 26] = struct.pack("<I", _ogg_crc(bytes(data[last:])))
    out.write_bytes(bytes(data))
    return out


def _ogg_crc(page: bytes) -> int:
    """Ogg's page CRC-32 (polynomial 0x04c11db7, no reflection, computed with CRC = 0)."""
    crc = 0
    for byte in page:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) & 0xFFFFFFFF if crc & 0x80000000 else (
                crc << 1) & 0xFFFFFFFF
    return crc


def word_by_word(model, clips: list[Path], out: Path, gap_s: float = 1.0) -> tuple[Path, str]:
    """Word-by-word speech: every word of ``clips`` (cut at ``model``'s word timestamps)
    followed by ``gap_s`` of silence, as a 16 kHz WAV; and the words spoken. Greedy
    tiny.en loops on such speech (issue 34: 163 words returned for 76 spoken on held-out
    recordings of this kind; 4 en clips made so give 229 for 59)."""
    import wave

    from runtimes.audio.files import SAMPLE_RATE, load_audio

    pieces, spoken = [], []
    silence = np.zeros(int(gap_s * SAMPLE_RATE), np.float32)
    for clip in clips:
        samples = load_audio(clip)
        for segment in model.transcribe([samples], 1)[0].segments:
            for word in segment.words:
                start, end = int(word.start * SAMPLE_RATE), int(word.end * SAMPLE_RATE)
                pieces += [samples[start:end], silence]
                spoken.append(word.word.strip())
    audio = np.concatenate(pieces)
    with wave.open(str(out), "wb") as f:
        f.setnchannels(1), f.setsampwidth(2), f.setframerate(SAMPLE_RATE)
        f.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
    return out, " ".join(spoken)
