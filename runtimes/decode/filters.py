"""Decoding as a chain of logit filters, as openai/whisper's ``LogitFilter``s.

Why a chain: greedy search, beam search and the server's iteration-level stepper all pick
tokens from the same masked logits, and timestamps add rules that depend on what each row
has generated so far. Each rule is one filter; the loops only build the chain
(``build_chain``) and call it once per step, so the three cannot drift apart.

A filter sees the logits of the rows still decoding, (rows, vocab) float32, and what each
of those rows has generated after its prompt, and masks tokens in place with -inf.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

#: Seconds per timestamp token (<|0.00|>, <|0.02|>, ...).
TIME_PRECISION = 0.02


class LogitFilter(Protocol):
    def apply(self, logits: np.ndarray, generated: Sequence[Sequence[int]]) -> None:
        """Mask tokens of ``logits`` in place; ``generated[i]`` is row i's output so far."""


@dataclass(frozen=True)
class SuppressTokens:
    """The model's suppress list, at every step, and every id from ``from_id`` on (the
    timestamps, in a decoding without them)."""

    ids: tuple[int, ...]
    from_id: int | None = None

    def apply(self, logits: np.ndarray, generated: Sequence[Sequence[int]]) -> None:
        logits[:, list(self.ids)] = -np.inf
        if self.from_id is not None:
            logits[:, self.from_id:] = -np.inf


@dataclass(frozen=True)
class SuppressBlank:
    """No blank and no end-of-text as a row's first token (openai/whisper's
    ``SuppressBlank``), so a window never decodes to nothing or a lone space."""

    ids: tuple[int, ...]

    def apply(self, logits: np.ndarray, generated: Sequence[Sequence[int]]) -> None:
        rows = [i for i, out in enumerate(generated) if not out]
        if rows:
            logits[np.ix_(rows, list(self.ids))] = -np.inf


@dataclass(frozen=True)
class TimestampRules:
    """Whisper's timestamp grammar (openai/whisper's ``ApplyTimestampRules``).

    Timestamps come in pairs closing one segment and opening the next, never decrease, and
    a segment is never empty; the first token is a timestamp no later than
    ``max_initial_index`` (1 s by default); and where the timestamps together are likelier
    than any single text token, a timestamp is taken.
    """

    eot: int
    no_timestamps: int
    timestamp_begin: int
    max_initial_index: int | None = 50

    def apply(self, logits: np.ndarray, generated: Sequence[Sequence[int]]) -> None:
        begin = self.timestamp_begin
        logits[:, self.no_timestamps] = -np.inf
        for row, out in enumerate(generated):
            self._pairs(logits[row], out)
            if not out:
                logits[row, :begin] = -np.inf
                if self.max_initial_index is not None:
                    logits[row, begin + self.max_initial_index + 1:] = -np.inf
        with np.errstate(invalid="ignore", divide="ignore"):
            logprobs = log_softmax(logits)
            stamps = _logsumexp(logprobs[:, begin:])
            likelier = stamps > logprobs[:, :begin].max(-1)
        logits[np.ix_(np.flatnonzero(likelier), np.arange(begin))] = -np.inf

    def _pairs(self, logits: np.ndarray, out: Sequence[int]) -> None:
        """One row: a timestamp after a lone timestamp or text, text after a pair; no
        timestamp earlier than the last one (nor equal, unless it closes a segment)."""
        begin = self.timestamp_begin
        last = len(out) >= 1 and out[-1] >= begin
        penultimate = len(out) < 2 or out[-2] >= begin
        if last:
            if penultimate:
                logits[begin:] = -np.inf
            else:
                logits[:self.eot] = -np.inf
        stamps = [t for t in out if t >= begin]
        if stamps:
            floor = stamps[-1] if last and not penultimate else stamps[-1] + 1
            logits[begin:floor] = -np.inf


def log_softmax(x: np.ndarray) -> np.ndarray:
    """Log-probabilities along the last axis."""
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def _logsumexp(x: np.ndarray) -> np.ndarray:
    top = x.max(-1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    return (top + np.log(np.exp(x - top).sum(-1, keepdims=True)))[:, 0]


@dataclass(frozen=True)
class Chain:
    """The filters of one decoding, applied in order."""

    filters: tuple[LogitFilter, ...]

    def apply(self, logits: np.ndarray, generated: Sequence[Sequence[int]]) -> None:
        for f in self.filters:
            f.apply(logits, generated)


def build_chain(eot: int, suppress: tuple[int, ...], at_begin: tuple[int, ...],
                suppress_blank: bool, timestamps: TimestampRules | None = None,
                suppress_from: int | None = None) -> Chain:
    """The chain of a decoding, in openai/whisper's order: blank, suppress list, timestamps."""
    filters: list[LogitFilter] = []
    if suppress_blank:
        filters.append(SuppressBlank(at_begin))
    filters.append(SuppressTokens(suppress, suppress_from))
    if timestamps is not None:
        filters.append(timestamps)
    return Chain(tuple(filters))
