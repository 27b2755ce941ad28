import numpy as np
import pytest

from runtimes.audio.features import N_FRAMES, batch_log_mel, log_mel, mel_filters, recording_log_mel
from runtimes.audio.files import load_audio


def test_mel_filters_match_transformers():
    from transformers.audio_utils import mel_filter_bank

    for n_mels in (80, 128):
        ref = mel_filter_bank(num_frequency_bins=201, num_mel_filters=n_mels, min_frequency=0.0,
                              max_frequency=8000.0, sampling_rate=16000, norm="slaney",
                              mel_scale="slaney")
        np.testing.assert_allclose(mel_filters(n_mels), ref.T, atol=1e-6)


def test_log_mel_matches_whisper_feature_extractor_on_real_speech(jfk):
    from transformers import WhisperFeatureExtractor

    audio = load_audio(jfk)
    ref = WhisperFeatureExtractor()(audio, sampling_rate=16000, return_tensors="np")
    ours = log_mel(audio)
    assert ours.shape == (80, N_FRAMES)
    np.testing.assert_allclose(ours, ref.input_features[0], atol=1e-4)


def test_a_recordings_log_mel_is_faster_whispers_and_a_clips_is_its_windows(jfk):
    """Sequential decoding's log-mel: faster-whisper's (the whole recording, one floor) on a
    long recording, and for a clip of at most 30 s the same as its window's."""
    from faster_whisper.feature_extractor import FeatureExtractor

    audio = load_audio(jfk)
    long = np.concatenate([audio, 0.3 * audio, audio, audio])  # 44 s, louder and quieter
    ours = recording_log_mel(long)
    assert ours.shape == (80, (long.size + 480000) // 160)
    ref = FeatureExtractor()(long)
    frames = long.size // 160 - 1  # faster-whisper pads 160 samples, not 30 s: the last differs
    np.testing.assert_allclose(ours[:, :frames], ref[:, :frames], atol=1e-5)
    clip = recording_log_mel(audio)
    active = audio.size // 160
    np.testing.assert_allclose(clip[:, :active], log_mel(audio)[:, :active], atol=1e-5)


def test_long_audio_is_cut_and_batches_stack():
    rng = np.random.default_rng(0)
    long = rng.standard_normal(16000 * 40).astype(np.float32)
    short = long[:16000]
    batch = batch_log_mel([long, short])
    assert batch.shape == (2, 80, N_FRAMES) and batch.flags["C_CONTIGUOUS"]
    np.testing.assert_allclose(batch[0], log_mel(long[: 16000 * 30]))


@pytest.mark.parametrize("n", [1, 199, 200, 201, 48037, 479700, 479999, 480000, 500000])
def test_skipping_silent_frames_is_exact_at_every_boundary(n):
    # log_mel transforms only frames that touch audio; the rest must equal the full result.
    from transformers import WhisperFeatureExtractor

    audio = (np.random.default_rng(n).standard_normal(n) * 0.1).astype(np.float32)
    ref = WhisperFeatureExtractor()(audio, sampling_rate=16000, return_tensors="np")
    np.testing.assert_allclose(log_mel(audio), ref.input_features[0], atol=2e-5)


def _blas_threads() -> list[int]:
    from threadpoolctl import threadpool_info

    return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]


def test_log_mel_runs_blas_on_one_thread_and_restores_the_setting():
    """The mel projection must not wake numpy's BLAS threads (they would spin on the cores
    the runtime needs next), and must leave the caller's setting as it was, also when the
    server's worker threads compute log-mels at the same time."""
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_limits

    from runtimes.audio.features import single_threaded_blas

    if not _blas_threads():
        pytest.skip("numpy has no BLAS that threadpoolctl can control here")
    audio = np.random.default_rng(0).standard_normal(16000 * 5).astype(np.float32)
    with threadpool_limits(limits=2, user_api="blas"):
        with single_threaded_blas():
            assert set(_blas_threads()) == {1}
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(log_mel, [audio] * 16))
        assert set(_blas_threads()) == {2}
