"""Speech spans with the Silero VAD faster-whisper ships, in bounded memory.

Why not ``faster_whisper.vad.get_speech_timestamps`` itself: it runs the VAD model on up to
10000 frames of 512 samples (320 s) per call, and ONNX Runtime then holds about 35 KB per
frame: a server windowing a 20-minute upload in 10-minute blocks peaked at +410 MB in the
VAD alone. The model carries its state (h, c) from call to call, so feeding it 512 frames
(16 s) at a time gives the very same probabilities (tested: identical floats) at a bounded
cost. The post-processing below is faster-whisper 1.2.1's (MIT licence), unchanged, and the
spans are tested equal to faster-whisper's.
"""

from __future__ import annotations

import numpy as np

#: Samples per VAD frame and the context each frame sees of the one before (Silero v6).
FRAME = 512
CONTEXT = 64
#: Frames per model call: 16 s of audio, a few MB of ONNX Runtime intermediates.
FRAMES_PER_CALL = 512


def speech_probs(audio: np.ndarray) -> np.ndarray:
    """Speech probability of each 512-sample frame (the last one zero-padded)."""
    from faster_whisper.vad import get_vad_model

    session = get_vad_model().session
    n_frames = audio.shape[0] // FRAME + 1  # faster-whisper pads even a whole last frame
    h = np.zeros((1, 1, 128), np.float32)
    c = np.zeros((1, 1, 128), np.float32)
    previous = np.zeros(CONTEXT, np.float32)  # the first frame's context is silence
    out = []
    for first in range(0, n_frames, FRAMES_PER_CALL):
        frames = _frames(audio, first, min(first + FRAMES_PER_CALL, n_frames))
        context = np.concatenate([previous[None], frames[:-1, -CONTEXT:]])
        previous = frames[-1, -CONTEXT:].copy()
        batch = np.concatenate([context, frames], axis=1)
        probs, h, c = session.run(None, {"input": batch, "h": h, "c": c})
        out.append(probs.reshape(-1))
    return np.concatenate(out)


def _frames(audio: np.ndarray, first: int, last: int) -> np.ndarray:
    """Frames ``first``..``last - 1`` as a (frames, 512) float32 array, zero-padded past
    the end of ``audio``."""
    piece = audio[first * FRAME:last * FRAME].astype(np.float32, copy=False)
    missing = (last - first) * FRAME - piece.shape[0]
    if missing:
        piece = np.pad(piece, (0, missing))
    return piece.reshape(-1, FRAME)


def speech_timestamps(audio: np.ndarray, threshold: float = 0.5, min_speech_ms: int = 0,
                      max_speech_s: float = float("inf"), min_silence_ms: int = 2000,
                      speech_pad_ms: int = 400, sampling_rate: int = 16000) -> list[dict]:
    """``faster_whisper.vad.get_speech_timestamps`` (same options, same result) on
    ``speech_probs``: [{"start": sample, "end": sample}, ...]."""
    probs = speech_probs(audio)
    neg_threshold = max(threshold - 0.15, 0.01)
    pad = sampling_rate * speech_pad_ms / 1000
    limits = _Limits(
        min_speech=sampling_rate * min_speech_ms / 1000,
        max_speech=sampling_rate * max_speech_s - FRAME - 2 * pad,
        min_silence=sampling_rate * min_silence_ms / 1000,
        min_silence_at_max=sampling_rate * 98 / 1000,
    )
    speeches = _spans(probs, threshold, neg_threshold, limits, len(audio))
    return _pad(speeches, pad, len(audio))


class _Limits:
    def __init__(self, min_speech: float, max_speech: float, min_silence: float,
                 min_silence_at_max: float) -> None:
        self.min_speech, self.max_speech = min_speech, max_speech
        self.min_silence, self.min_silence_at_max = min_silence, min_silence_at_max


def _spans(probs: np.ndarray, threshold: float, neg_threshold: float, limits: _Limits,
           length: int) -> list[dict]:
    """faster-whisper's hysteresis over the frame probabilities (unpadded spans)."""
    triggered = False
    speeches: list[dict] = []
    current: dict = {}
    temp_end = prev_end = next_start = 0
    for i, prob in enumerate(probs):
        at = FRAME * i
        if prob >= threshold and temp_end:
            temp_end = 0
            if next_start < prev_end:
                next_start = at
        if prob >= threshold and not triggered:
            triggered = True
            current["start"] = at
            continue
        if triggered and at - current["start"] > limits.max_speech:
            if prev_end:
                current["end"] = prev_end
                speeches.append(current)
                current = {}
                if next_start < prev_end:
                    triggered = False
                else:
                    current["start"] = next_start
                prev_end = next_start = temp_end = 0
            else:
                current["end"] = at
                speeches.append(current)
                current = {}
                prev_end = next_start = temp_end = 0
                triggered = False
                continue
        if prob < neg_threshold and triggered:
            if not temp_end:
                temp_end = at
            if at - temp_end > limits.min_silence_at_max:
                prev_end = temp_end
            if at - temp_end < limits.min_silence:
                continue
            current["end"] = temp_end
            if current["end"] - current["start"] > limits.min_speech:
                speeches.append(current)
            current = {}
            prev_end = next_start = temp_end = 0
            triggered = False
    if current and length - current["start"] > limits.min_speech:
        current["end"] = length
        speeches.append(current)
    return speeches


def _pad(speeches: list[dict], pad: float, length: int) -> list[dict]:
    """Pad each span by ``pad`` samples, splitting shorter pauses between neighbours."""
    for i, speech in enumerate(speeches):
        if i == 0:
            speech["start"] = int(max(0, speech["start"] - pad))
        if i != len(speeches) - 1:
            silence = speeches[i + 1]["start"] - speech["end"]
            if silence < 2 * pad:
                speech["end"] += int(silence // 2)
                speeches[i + 1]["start"] = int(max(0, speeches[i + 1]["start"] - silence // 2))
            else:
                speech["end"] = int(min(length, speech["end"] + pad))
                speeches[i + 1]["start"] = int(max(0, speeches[i + 1]["start"] - pad))
        else:
            speech["end"] = int(min(length, speech["end"] + pad))
    return speeches
