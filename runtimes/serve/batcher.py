"""Dynamic batching: jobs from concurrent requests share one model call.

Why: a Whisper decoder step costs nearly the same for 1 or 8 sequences on a CPU, so eight
requests decoded together finish far sooner than eight decoded one after another. The
batcher waits at most ``max_wait_s`` for more jobs of the same kind, counted from the later
of the oldest job's arrival and the end of the previous batch, then runs up to ``max_batch``
of them in one call on a single model thread (runtimes are not assumed to be thread-safe).
Counting from the previous batch's end matters under steady load: jobs that queued while
the model was busy would otherwise always start at once, and the batches would stay split
the way they first formed (measured: 2 + 6 instead of 8 with 8 clients).
``max_batch=1`` turns batching off.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

RunBatch = Callable[[Hashable, list[Any]], list[Any]]


@dataclass(eq=False)
class _Job:
    key: Hashable  # jobs batch together only with jobs of the same key
    payload: Any
    future: Future = field(default_factory=Future)
    enqueued: float = field(default_factory=time.monotonic)


class DynamicBatcher:
    """Collects jobs into batches and runs them on one worker thread.

    Args:
        run: called as ``run(key, payloads)`` on the worker thread; returns one result per
            payload, in order. An exception fails every job of that batch.
        max_batch: most jobs per call (1 = no batching).
        max_wait_s: how long the oldest job may wait for others to join its batch.
        observe: called with each batch's size (metrics).
    """

    def __init__(self, run: RunBatch, max_batch: int, max_wait_s: float,
                 observe: Callable[[int], None] = lambda size: None) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        if max_wait_s < 0:
            raise ValueError(f"max_wait_s must be >= 0, got {max_wait_s}")
        self._run, self.max_batch, self.max_wait_s = run, max_batch, max_wait_s
        self.observe = observe  # public: the server points it at its metrics
        self._pending: deque[_Job] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._idle_since = time.monotonic()  # when the last batch finished
        self._thread = threading.Thread(target=self._loop, name="batcher", daemon=True)

    @property
    def depth(self) -> int:
        """Jobs waiting for the model (not counting the batch being run)."""
        return len(self._pending)

    @property
    def alive(self) -> bool:
        """Whether the worker thread is running (a replica's health check asks)."""
        return self._thread.is_alive()

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        """Stop the worker after the batch it is running; waiting jobs fail."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join()
        while self._pending:
            job = self._pending.popleft()
            if job.future.set_running_or_notify_cancel():
                job.future.set_exception(RuntimeError("the server is shutting down"))

    def submit(self, key: Hashable, payload: Any) -> Future:
        """Queue one job; cancelling its future before it runs drops it."""
        job = _Job(key, payload)
        with self._cond:
            if self._closed:
                raise RuntimeError("the batcher is closed")
            self._pending.append(job)
            self._cond.notify_all()
        return job.future

    def abandon(self, futures: list[Future]) -> None:
        """The request of these jobs gave up (timeout): queued ones are dropped. Here that
        is all: cancelling a queued job's future already drops it, and a running batch
        cannot be cut short."""
        for future in futures:
            future.cancel()

    def _next_batch(self) -> list[_Job]:
        with self._cond:
            while not self._pending and not self._closed:
                self._cond.wait()
            if self._closed:
                return []
            key = self._pending[0].key
            deadline = max(self._pending[0].enqueued, self._idle_since) + self.max_wait_s
            while self._count(key) < self.max_batch and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            batch = [job for job in self._pending if job.key == key][: self.max_batch]
            for job in batch:
                self._pending.remove(job)
        return [job for job in batch if job.future.set_running_or_notify_cancel()]

    def _count(self, key: Hashable) -> int:
        return sum(job.key == key for job in self._pending)

    def _loop(self) -> None:
        while not self._closed:
            batch = self._next_batch()
            if not batch:
                continue
            self.observe(len(batch))
            try:
                results = self._run(batch[0].key, [job.payload for job in batch])
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting requests
                self._idle_since = time.monotonic()
                for job in batch:
                    job.future.set_exception(exc)
                continue
            self._idle_since = time.monotonic()
            for job, result in zip(batch, results):
                job.future.set_result(result)
