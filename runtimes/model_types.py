"""faster-whisper's result types (``Word``, ``Segment``, ``TranscriptionInfo``), field for
field, so code written against faster-whisper reads the toolkit's results unchanged."""

from __future__ import annotations

from dataclasses import dataclass

from runtimes.audio.chunking import VadSettings
from runtimes.model_options import TranscriptionOptions


@dataclass
class Word:
    """faster-whisper's ``Word``."""

    start: float
    end: float
    word: str
    probability: float


@dataclass
class Segment:
    """faster-whisper's ``Segment``: ``seek`` is the frame (10 ms) its window starts at."""

    id: int
    seek: int
    start: float
    end: float
    text: str
    tokens: list[int]
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float
    words: list[Word] | None
    temperature: float | None


@dataclass
class TranscriptionInfo:
    """faster-whisper's ``TranscriptionInfo``; ``vad_options`` are the VAD settings the
    windows were cut with (None when the whole file was decoded sequentially)."""

    language: str
    language_probability: float
    duration: float
    duration_after_vad: float
    all_language_probs: list[tuple[str, float]] | None
    transcription_options: TranscriptionOptions
    vad_options: VadSettings | None = None
