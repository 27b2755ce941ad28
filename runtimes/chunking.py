"""Split recordings longer than Whisper's 30 s window at pauses found by Silero VAD.

Cutting at speech pauses (not every 30 s) avoids splitting words, which is what makes
long-form WER close to short-form WER. The VAD model is the one faster-whisper ships.
"""

from __future__ import annotations

import numpy as np

from runtimes.audio import SAMPLE_RATE
from runtimes.features import N_SAMPLES


def speech_spans(samples: np.ndarray, max_span_s: float) -> list[tuple[int, int]]:
    """(start, end) sample indices of speech, no span longer than ``max_span_s``."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    options = VadOptions(
        max_speech_duration_s=max_span_s, min_silence_duration_ms=500, speech_pad_ms=200
    )
    return [(s["start"], s["end"]) for s in get_speech_timestamps(samples, options)]


def merge_spans(
    spans: list[tuple[int, int]], max_len: int = N_SAMPLES
) -> list[tuple[int, int]]:
    """Greedily join consecutive spans (with the pauses between them) into windows of at
    most ``max_len`` samples; a span is never split."""
    windows: list[tuple[int, int]] = []
    for start, end in spans:
        if windows and end - windows[-1][0] <= max_len:
            windows[-1] = (windows[-1][0], end)
        else:
            windows.append((start, end))
    return windows


def split_spans(samples: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) sample indices of the windows ``split_windows`` cuts: the whole signal
    when it fits in 30 s, else VAD-cut windows of <= 30 s (none if there is no speech)."""
    if samples.shape[-1] <= N_SAMPLES:
        return [(0, int(samples.shape[-1]))]
    # Leave a little room under 30 s: VAD pads spans, and Whisper prefers a tail of silence.
    spans = speech_spans(samples, max_span_s=N_SAMPLES / SAMPLE_RATE - 1.0)
    return merge_spans(spans)


def split_windows(samples: np.ndarray) -> list[np.ndarray]:
    """Audio of at most 30 s as one window; longer audio as VAD-cut windows of <= 30 s.

    Returns an empty list when a long recording has no speech at all.
    """
    return [samples[start:end] for start, end in split_spans(samples)]
