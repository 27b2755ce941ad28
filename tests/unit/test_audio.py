import wave
from pathlib import Path

import numpy as np
import pytest

from runtimes.audio.files import is_silence, load_audio
from runtimes.errors import AudioError
from tests.conftest import SPEECH


def _write_wav(path: Path, samples: np.ndarray, rate: int, channels: int = 1) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((samples * 32767).astype("<i2").tobytes())
    return path


def test_stereo_44k_becomes_16k_mono(tmp_path):
    t = np.arange(44100) / 44100
    left = 0.5 * np.sin(2 * np.pi * 440 * t)
    stereo = np.stack([left, left], axis=1).ravel()
    audio = load_audio(_write_wav(tmp_path / "s.wav", stereo, 44100, channels=2))
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(audio.size - 16000) <= 160
    assert 0.4 < np.abs(audio).max() <= 0.51


@pytest.mark.parametrize("name, content, match", [
    ("missing.wav", None, "audio file not found"),
    ("empty.wav", b"", r"audio file is empty \(0 bytes\)"),
    ("notes.wav", b"these are not audio bytes" * 40, "not a decodable audio file"),
])
def test_bad_files_get_clear_errors(tmp_path, name, content, match):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(AudioError, match=match) as info:
        load_audio(path)
    assert name in str(info.value)


def test_zero_length_wav_is_an_error(tmp_path):
    path = _write_wav(tmp_path / "zero.wav", np.zeros(0), 16000)
    with pytest.raises(AudioError, match="no samples"):
        load_audio(path)


def test_silence_detection(tmp_path):
    silent = load_audio(_write_wav(tmp_path / "quiet.wav", np.zeros(16000), 16000))
    assert is_silence(silent)
    assert not is_silence(np.full(100, 0.1, dtype=np.float32))


def test_real_formats_decode_to_the_same_speech(speech_rows):
    from tests.conftest import SPEECH

    jfk = [load_audio(SPEECH / "jfk" / f"jfk.{ext}") for ext in ("flac", "wav", "mp3")]
    lengths = [a.size for a in jfk]
    assert max(lengths) - min(lengths) < 16000 * 0.1  # mp3 adds encoder padding only
    n = min(lengths)
    assert np.corrcoef(jfk[0][:n], jfk[1][:n])[0, 1] > 0.99


def test_samples_equal_faster_whisper_decode_audio(speech_rows, tmp_path):
    """The toolkit decodes without faster-whisper's per-file gc.collect(), but must hand
    the models exactly the samples faster-whisper's reference row sees: every format of
    the shared data (flac, wav, mp3; 8 kHz among them), and a 44.1 kHz stereo file."""
    from faster_whisper.audio import decode_audio

    from tests.conftest import SPEECH

    rows = [r for r in speech_rows if r["subset"] in ("formats", "multi")][:8]
    paths = [SPEECH / r["path"] for r in rows] + [SPEECH / "jfk" / "jfk.flac"]
    t = np.linspace(0, 1, 44100, dtype=np.float32)
    stereo = np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 660 * t)], axis=1) * 0.5
    paths.append(_write_wav(tmp_path / "stereo.wav", stereo.reshape(-1), 44100, channels=2))
    assert len({p.suffix for p in paths}) >= 3
    for path in paths:
        ours, theirs = load_audio(path), decode_audio(str(path))
        assert ours.dtype == np.float32 and np.array_equal(ours, theirs), path.name


def test_wav_without_pyav_matches_ffmpeg(speech_rows):
    """The standard-library WAV path (slim GPU images have no PyAV): the same samples at
    16 kHz, the same signal within resampler differences at 22.05 kHz."""
    from runtimes.audio.files import _wav

    en = [r for r in speech_rows if r["subset"] == "en" and r["path"].endswith(".wav")]
    for rate, tolerance in (("16000", 1e-6), ("22050", 0.05)):
        path = SPEECH / next(r["path"] for r in en if r["sample_rate"] == rate)
        ours, ffmpeg = _wav(str(path), path.name), load_audio(path)
        n = min(len(ours), len(ffmpeg))
        assert abs(len(ours) - len(ffmpeg)) <= 2
        assert np.linalg.norm(ours[:n] - ffmpeg[:n]) / np.linalg.norm(ffmpeg[:n]) < tolerance


def test_wav_without_pyav_refuses_other_formats_clearly(tmp_path):
    from runtimes.audio.files import _wav

    bad = tmp_path / "clip.flac"
    bad.write_bytes(b"fLaC" + b"\0" * 100)
    with pytest.raises(AudioError, match="PyAV is not installed, so only PCM WAV"):
        _wav(str(bad), bad.name)


def _bomb(rate: int = 1, seconds: int = 3 * 3600) -> bytes:
    """A WAV of ``seconds`` at ``rate`` Hz: 21.6 KB that FFmpeg resamples to 3 h of audio
    (the hardening issue's reproduction)."""
    import io

    x = np.random.default_rng(0).normal(0, 8000, seconds * rate).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(x.tobytes())
    return buffer.getvalue()


def test_a_tiny_file_claiming_hours_stops_decoding_at_its_byte_budget():
    import tracemalloc

    from runtimes.audio.files import load_audio_bytes
    from runtimes.audio.limits import AudioTooLongError

    data = _bomb()
    tracemalloc.start()
    with pytest.raises(AudioTooLongError, match=r"b.wav declares 10800 s, more than 338 s \(a 21644-byte"):
        load_audio_bytes(data, "b.wav", max_seconds=3 * 3600)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 100e6  # refused from its header; it cost 2.4 GB in the server before


def test_a_header_that_understates_the_length_is_caught_by_the_decoded_count(monkeypatch):
    """The second line of defence: headers can lie or be absent, the decoded count cannot.
    (Declared durations are switched off here; FFmpeg derives them from the data size for
    WAV, so a WAV cannot understate its length.)"""
    import tracemalloc

    import runtimes.audio.files as audio
    from runtimes.audio import limits

    monkeypatch.setattr(limits, "check_declared", lambda *args: None)
    tracemalloc.start()
    with pytest.raises(limits.AudioTooLongError, match=r"b.wav decodes to more than 338 s \(a 21644-byte"):
        audio.load_audio_bytes(_bomb(), "b.wav", max_seconds=3 * 3600)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 100e6  # it decoded 338 s, not 3 h


def test_the_duration_limit_and_no_limit_for_trusted_callers(tmp_path):
    from runtimes.audio.files import load_audio, load_audio_bytes
    from runtimes.audio.limits import AudioTooLongError, max_decoded_seconds

    clip = _write_wav(tmp_path / "c.wav", np.zeros(16000 * 3, np.float32) + 0.1, 16000)
    with pytest.raises(AudioTooLongError, match="declares 3 s, more than 2 s \\(the limit is 2 s\\)"):
        load_audio(clip, max_seconds=2)
    assert load_audio(clip).size == 48000  # a local file the caller trusts: no limit
    assert load_audio_bytes(clip.read_bytes(), max_seconds=3.5).size == 48000
    assert max_decoded_seconds(64_000, 10_800) == 1000 and max_decoded_seconds(10, None) is None


def test_a_damaged_mp3_decodes_past_its_damage_and_says_so(tmp_path):
    """Issue 32: 400 random bytes in the middle of JFK's MP3 ended decoding at 5.5 s, and
    the first half was answered as the whole file. Now the damaged frame is skipped."""
    from runtimes.audio.files import AudioReport
    from tests.media import damaged_mp3

    clean = load_audio(SPEECH / "jfk" / "jfk.mp3")
    report = AudioReport()
    damaged = load_audio(damaged_mp3(tmp_path / "d.mp3"), report=report)
    assert report.skipped_frames >= 1 and report.declared_s == 11.0
    assert report.decoded_s == damaged.size / 16000 > 10.5  # one 26 ms frame lost, not 5.5 s
    assert np.array_equal(damaged[:80000], clean[:80000])  # the first 5 s untouched
    assert "skipped 1 damaged frame(s); decoded 10.95 s of the 11.00 s it declares" in (
        report.describe("d.mp3"))
    clean_report = AudioReport()
    load_audio(SPEECH / "jfk" / "jfk.mp3", report=clean_report)
    assert clean_report.skipped_frames == 0 and clean_report.describe("x") is None


def test_a_file_damaged_beyond_skipped_frames_is_refused_not_cut_short(tmp_path):
    """40 KB of noise from 20 % in: what decodes is 4.9 s of the 11 s declared."""
    from tests.media import damaged_mp3

    path = damaged_mp3(tmp_path / "d.mp3", start=0.2, length=40000)
    with pytest.raises(AudioError, match=r"damaged audio file: .*d.mp3 decodes to 4.86 s of "
                                         r"the 11.00 s it declares \(10 damaged frame"):
        load_audio(path)


def test_a_directory_is_named_as_a_directory(tmp_path):
    with pytest.raises(AudioError, match="audio path is a directory, not a file"):
        load_audio(tmp_path)
