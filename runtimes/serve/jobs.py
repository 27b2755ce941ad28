"""The server's batch contract: what the engine submits to a batcher and what the stepper
reads, as typed records instead of positional tuples.

A ``BatchKey`` says which windows may share a model call; a ``WindowJob`` is one window's
payload. The language-detection job carries its log-mel window alone (key ``DETECT``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: kinds of model call: greedy decoding (the stepper decodes these step by step), sampling
#: at a temperature, decoding + word alignment in one call, language detection
KINDS = ("generate", "sample", "words", "detect")


@dataclass(frozen=True)
class BatchKey:
    """Jobs batch together only with jobs of an equal key.

    Attributes:
        kind: one of KINDS.
        prompt_length: the prompt's length (a window-level batch needs equal lengths; the
            stepper batches any lengths together).
        timestamps: decode Whisper's timestamp tokens (the rows are then scored).
        temperature: the sampling temperature ("sample", "words"; 0 = greedy).
        request: set for batch-variant precisions: only one request's windows share a call.
    """

    kind: str
    prompt_length: int = 0
    timestamps: bool = False
    temperature: float = 0.0
    request: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"batch key kind {self.kind!r} is not one of: {', '.join(KINDS)}")

    @property
    def steps(self) -> bool:
        """Whether the stepper decodes these jobs step by step (greedy decoding)."""
        return self.kind == "generate"

    @classmethod
    def of(cls, prompt_length: int, timestamps: bool, temperature: float,
           request: int | None = None, words: bool = False) -> BatchKey:
        """The key of a request's windows: "words" when aligned in the same call (always
        timestamped), "sample" above temperature 0, else "generate"."""
        if words:
            return cls("words", prompt_length, True, temperature, request)
        kind = "sample" if temperature > 0 else "generate"
        return cls(kind, prompt_length, timestamps, temperature, request)


DETECT = BatchKey("detect")


@dataclass(frozen=True, eq=False)
class WindowJob:
    """One window to decode.

    Attributes:
        features: its log-mel (n_mels, 3000).
        prompt: the decoder prompt ids.
        place: the window's place in its upload (seeds its sampling, so a window's draws do
            not depend on its batch).
        frames: log-mel frames of speech (word alignment only).
        plain_prompt: the text-only prompt the alignment is teacher-forced with.
        language: the window's language (word splitting).
    """

    features: np.ndarray
    prompt: list[int]
    place: int
    frames: int | None = None
    plain_prompt: list[int] | None = None
    language: str | None = None
