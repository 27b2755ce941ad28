"""Server settings, checked once at start-up so a bad value fails before the model loads."""

from __future__ import annotations

import math
from dataclasses import dataclass

from runtimes.errors import OptionError

BATCHING = ("steps", "windows")


@dataclass(frozen=True)
class ServeConfig:
    """How the server admits, batches and bounds work.

    Attributes:
        model_id: the id ``/v1/models`` lists (any ``model`` value in a request is accepted,
            so clients that send "whisper-1" work unchanged).
        api_key: if set, every route but /health needs ``Authorization: Bearer <key>``.
        max_batch_size: most windows per model call; 1 turns dynamic batching off.
        batching: "steps" (windows join and leave the running batch at every decoder
            step; greedy decoding of graph artifacts, others fall back to "windows") or
            "windows" (a batch of windows runs until its last transcript ends).
        max_wait_ms: how long the oldest waiting window waits for others to join.
        max_queue: most transcription requests admitted at once; beyond it the server
            answers 503 at once instead of queueing without bound.
        max_upload_mb: larger uploads get 413 (OpenAI's own limit is 25 MB).
        timeout_s: a request not answered by then gets 504 and its queued work is dropped.
        max_audio_s: most seconds an upload may decode to (and never more than one second
            per ``runtimes.audio.limits.MIN_BYTES_PER_SECOND`` bytes); decoding stops there: 413.
        max_subtitle_s: srt and vtt answers cut segments longer than this at their word
            timestamps (the artifact must align); None = Whisper's segments as they are.
    """

    model_id: str
    api_key: str | None = None
    max_batch_size: int = 8
    max_wait_ms: float = 10.0
    batching: str = "steps"
    max_queue: int = 64
    max_upload_mb: float = 25.0
    timeout_s: float = 120.0
    max_audio_s: float = 3 * 3600.0
    max_subtitle_s: float | None = None

    def __post_init__(self) -> None:
        if self.max_subtitle_s is not None and not self.max_subtitle_s >= 1:
            raise OptionError(f"max_subtitle_s must be a number of seconds >= 1, got "
                              f"{self.max_subtitle_s!r}")
        bounds = (("max_batch_size", 1, False), ("max_wait_ms", 0, False), ("max_queue", 1, False),
                  ("max_upload_mb", 0, True), ("timeout_s", 0, True), ("max_audio_s", 0, True))
        for name, low, strict in bounds:
            value = getattr(self, name)
            if not math.isfinite(value) or value < low or (strict and value == low):
                raise OptionError(f"{name} must be a finite number {'>' if strict else '>='} "
                                  f"{low}, got {value!r}")
        if self.batching not in BATCHING:
            raise OptionError(f"batching {self.batching!r} is not one of {', '.join(BATCHING)}")
        if self.api_key is not None and not self.api_key.strip():
            raise OptionError("api_key is empty; omit it to serve without a key")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)
