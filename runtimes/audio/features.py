"""Whisper's log-mel front end, in numpy, shared by every runtime.

One implementation for all runtimes keeps the comparison fair (DESIGN.md: same
pre-processing) and keeps transformers out of deployments. It reproduces
``transformers.WhisperFeatureExtractor`` (checked in tests/unit/test_features.py).
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager
from functools import lru_cache

import numpy as np

from runtimes.audio.files import SAMPLE_RATE

N_FFT = 400
HOP_LENGTH = 160
CHUNK_SECONDS = 30
N_SAMPLES = CHUNK_SECONDS * SAMPLE_RATE  # 480000 samples = one 30 s window
N_FRAMES = N_SAMPLES // HOP_LENGTH  # 3000 frames


def _hz_to_mel(freq: np.ndarray) -> np.ndarray:
    """Slaney mel scale: linear below 1 kHz, logarithmic above (librosa's default)."""
    freq = np.asarray(freq, dtype=np.float64)
    mels = 3.0 * freq / 200.0
    log_region = freq >= 1000.0
    mels[log_region] = 15.0 + np.log(freq[log_region] / 1000.0) * (27.0 / np.log(6.4))
    return mels


def _mel_to_hz(mels: np.ndarray) -> np.ndarray:
    mels = np.asarray(mels, dtype=np.float64)
    freq = 200.0 * mels / 3.0
    log_region = mels >= 15.0
    freq[log_region] = 1000.0 * np.exp(np.log(6.4) * (mels[log_region] - 15.0) / 27.0)
    return freq


@lru_cache(maxsize=4)
def mel_filters(n_mels: int) -> np.ndarray:
    """Slaney-normalised triangular mel filters, shape (n_mels, N_FFT // 2 + 1)."""
    fft_freqs = np.linspace(0, SAMPLE_RATE / 2, N_FFT // 2 + 1)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(np.array([0.0]))[0],
                                   _hz_to_mel(np.array([SAMPLE_RATE / 2]))[0], n_mels + 2))
    lower = (fft_freqs[None, :] - edges[:-2, None]) / (edges[1:-1] - edges[:-2])[:, None]
    upper = (edges[2:, None] - fft_freqs[None, :]) / (edges[2:] - edges[1:-1])[:, None]
    filters = np.maximum(0.0, np.minimum(lower, upper))
    filters *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return filters.astype(np.float32)


_BLAS_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def _blas_controller():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def single_threaded_blas() -> AbstractContextManager:
    """numpy's BLAS limited to one thread inside the block.

    Why: a multi-threaded BLAS call (the mel projection is one) leaves OpenBLAS's worker
    threads spinning for a while afterwards, and on a small machine they take the cores
    from the inference runtime that runs next. Measured on a 2-core machine: OpenVINO's
    encoder took ~120 ms per window right after a log-mel instead of ~60 ms, and batch-1
    RTFx rose 1.47x with the limit (README, "BLAS threads"). One thread costs the
    projection itself little: it is 80 x 201 x 3000 multiply-adds.
    """
    return _blas_controller().limit(limits=1, user_api="blas")


def _mel_power(filters: np.ndarray, power: np.ndarray) -> np.ndarray:
    """``filters @ power.T`` on one BLAS thread; the lock keeps concurrent callers (the
    server's worker threads) from restoring each other's thread counts out of order."""
    with _BLAS_LOCK, single_threaded_blas():
        return filters @ power.T


@lru_cache(maxsize=1)
def _hann_window() -> np.ndarray:
    # Periodic Hann window, as torch.hann_window(400) and WhisperFeatureExtractor use.
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)


def pad_or_trim(samples: np.ndarray, length: int = N_SAMPLES) -> np.ndarray:
    """Zero-pad or cut 1-D samples to exactly ``length``."""
    if samples.shape[-1] >= length:
        return samples[:length]
    return np.pad(samples, (0, length - samples.shape[-1]))


def log_mel(samples: np.ndarray, n_mels: int = 80) -> np.ndarray:
    """Log-mel spectrogram of one 30 s window.

    Only frames that overlap the audio are transformed: frames of the zero padding have
    zero power, so they are filled in directly. The result is identical to transforming
    the whole padded window, at a cost proportional to the audio's length (a 3 s clip
    costs a tenth of a 30 s one).

    Args:
        samples: 16 kHz mono float32; padded or cut to 30 s.
        n_mels: 80, or 128 for large-v3.

    Returns:
        float32 array of shape (n_mels, 3000).
    """
    window = pad_or_trim(np.asarray(samples, dtype=np.float32))
    n_samples = min(np.asarray(samples).shape[-1], N_SAMPLES)
    # Frames whose span [i*hop - n_fft/2, i*hop + n_fft/2] touches a sample of audio.
    n_active = min(N_FRAMES, (n_samples + N_FFT // 2) // HOP_LENGTH + 1)
    padded = np.pad(window, N_FFT // 2, mode="reflect")  # torch.stft(center=True)
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP_LENGTH][:n_active]
    spectrum = np.fft.rfft(frames * _hann_window(), axis=-1)
    power = (spectrum.real**2 + spectrum.imag**2).astype(np.float32)
    log_spec = np.full((n_mels, N_FRAMES), -10.0, dtype=np.float32)  # log10(1e-10): silence
    log_spec[:, :n_active] = np.log10(np.maximum(_mel_power(mel_filters(n_mels), power), 1e-10))
    log_spec = np.maximum(log_spec, log_spec.max() - 8.0)
    return (log_spec + 4.0) / 4.0


def recording_log_mel(samples: np.ndarray, n_mels: int = 80) -> np.ndarray:
    """Log-mel of a whole recording, as openai/whisper's ``log_mel_spectrogram(audio,
    padding=N_SAMPLES)`` and faster-whisper's sequential ``transcribe`` compute it: the
    recording followed by 30 s of silence, its floor 8 (log10) below the recording's
    loudest bin, not each window's. Why not ``log_mel`` per window: with a window's own
    floor, CTranslate2 int8 tiny.en put a 30 s window of the LJ Speech recording's
    timestamps on whole seconds (12.00, 22.00) where with the recording's it found the
    sentences (6.04, 12.40), as faster-whisper does. The STFT runs 30 s at a time.

    Returns:
        float32 (n_mels, frames): 100 frames per second of the recording and of the 30 s
        after it (openai's count: the last STFT frame is dropped).
    """
    audio = np.pad(np.asarray(samples, dtype=np.float32), (0, N_SAMPLES))
    padded = np.pad(audio, N_FFT // 2, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP_LENGTH]
    n_frames = audio.size // HOP_LENGTH
    log_spec = np.empty((n_mels, n_frames), dtype=np.float32)
    for start in range(0, n_frames, N_FRAMES):
        part = frames[start:min(start + N_FRAMES, n_frames)]
        spectrum = np.fft.rfft(part * _hann_window(), axis=-1)
        power = (spectrum.real**2 + spectrum.imag**2).astype(np.float32)
        log_spec[:, start:start + len(part)] = np.log10(
            np.maximum(_mel_power(mel_filters(n_mels), power), 1e-10))
    log_spec = np.maximum(log_spec, log_spec.max() - 8.0)
    return (log_spec + 4.0) / 4.0


def batch_log_mel(batch: list[np.ndarray], n_mels: int = 80) -> np.ndarray:
    """Stack the log-mel of each window: shape (batch, n_mels, 3000), C-contiguous."""
    return np.ascontiguousarray(np.stack([log_mel(s, n_mels) for s in batch]))
