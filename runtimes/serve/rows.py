"""The stepper's running batch: its rows (``Rows``: jobs, tokens, caches, scores) and the
cross-attention caches in fixed buffers (``Slots``), with the cache arithmetic of rows
joining (left-padded, merged) and leaving (selected, trimmed). Scheduling decisions stay in
``runtimes.serve.stepper``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from runtimes.decode.step import StepModel
from runtimes.serve.batcher import _Job


@dataclass
class Rows:
    """The running batch: per row its job, tokens so far and next-token logits. Row i's
    cross-attention cache is row i of the batcher's ``Slots``."""

    jobs: list[_Job]
    out: list[list[int]]
    lengths: np.ndarray  # each row's real cache length (the cache is right-aligned)
    cache: Any
    logits: np.ndarray
    sums: np.ndarray  # each row's summed log-probabilities (rows that are scored)
    no_speech: np.ndarray  # each row's no-speech probability (nan when not scored)


class Slots:
    """The cross-attention caches of the running rows, in buffers for ``capacity`` rows.

    Why: the cross cache is the largest per-row state (18 MB per window for tiny.en in
    f32), and joining or dropping rows by concatenating and selecting copied the whole
    batch's every time (ONNX int8, 8 clients: 1.4 s of 8.8 s). Here the running rows fill
    a prefix: a joining row is copied in once, and a leaving row's place is taken by the
    last row (one row copied).
    """

    def __init__(self, like: Any, capacity: int) -> None:
        self.buffers = _rebuild(like, [_alloc(x, capacity) for x in _leaves(like)])

    def view(self, rows: int) -> Any:
        """The first ``rows`` rows (no copy), as the decoder step takes them."""
        return _rebuild(self.buffers, [b[:rows] for b in _leaves(self.buffers)])

    def write(self, start: int, values: Any) -> None:
        for buffer, value in zip(_leaves(self.buffers), _leaves(values)):
            buffer[start:start + len(value)] = value

    def move(self, dst: int, src: int) -> None:
        for buffer in _leaves(self.buffers):
            buffer[dst] = buffer[src]


def _leaves(tree: Any) -> list:
    """The arrays (or tensors) of a cache: a dict of them or a list."""
    return list(tree.values()) if isinstance(tree, dict) else list(tree)


def _rebuild(like: Any, leaves: list) -> Any:
    return dict(zip(like, leaves)) if isinstance(like, dict) else leaves


def _alloc(x: Any, capacity: int) -> Any:
    """An uninitialised buffer like ``x`` (numpy array or torch tensor) for ``capacity`` rows."""
    shape = (capacity, *x.shape[1:])
    return np.empty(shape, x.dtype) if isinstance(x, np.ndarray) else x.new_empty(shape)


def _cache_len(cache: Any) -> int:
    return int(cache[0].shape[2])


def _left_pad(cache: list, total: int) -> list:
    """Self-attention caches (B, H, P, D) padded with zeros on the left to ``total``."""
    missing = total - _cache_len(cache)
    if missing == 0:
        return cache
    if isinstance(cache[0], np.ndarray):
        return [np.pad(x, ((0, 0), (0, 0), (missing, 0), (0, 0))) for x in cache]
    import torch.nn.functional as F

    return [F.pad(x, (0, 0, missing, 0)) for x in cache]


def merge(model: StepModel, parts: list[Rows]) -> Rows:
    """One batch from several: caches left-padded to the longest, rows concatenated."""
    if len(parts) == 1:
        return parts[0]
    total = max(_cache_len(p.cache) for p in parts)
    return Rows(
        [job for p in parts for job in p.jobs], [out for p in parts for out in p.out],
        np.concatenate([p.lengths for p in parts]),
        model.concat([_left_pad(p.cache, total) for p in parts]),
        np.concatenate([p.logits for p in parts]), np.concatenate([p.sums for p in parts]),
        np.concatenate([p.no_speech for p in parts]))


def select(model: StepModel, rows: Rows, order: np.ndarray) -> Rows:
    """The rows in ``order``; the cache loses the padding no kept row needs."""
    lengths = rows.lengths[order]
    cache = model.select(rows.cache, order)
    drop = _cache_len(cache) - int(lengths.max())
    if drop:  # the longest row left: its padding-only columns go (copied: contiguous)
        cache = [x[:, :, drop:].copy() if isinstance(x, np.ndarray) else x[:, :, drop:].contiguous()
                 for x in cache]
    return Rows([rows.jobs[i] for i in order], [rows.out[i] for i in order], lengths, cache,
                 rows.logits[order], rows.sums[order], rows.no_speech[order])
