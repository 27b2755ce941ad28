"""Iteration-level batching: windows join a running batch at any decoder step and leave it
as soon as their transcript ends.

Why: with request-level batching (``DynamicBatcher``) a batch runs until its longest
transcript ends, shrinking as rows finish, and requests that arrive meanwhile wait for the
whole batch. On a CPU the encoder costs the same per window in a
batch or alone, so all of batching's gain is in the decoder steps, and those gain only
while the batch is full. Here a new window is encoded and its prompt decoded at the next
step boundary, then it decodes with every running row: one decoder step for the batch.

It needs a decoder step that takes per-row cache lengths (``cache_lengths``, see
``exporters.families.whisper.DecoderStepGraph``): rows that joined later have a shorter
cache, padded on the left and masked out. The tokens are those of greedy decoding of the
window alone (tested); beam search and runtimes without that input use ``DynamicBatcher``.
Jobs of any other key (language detection) run as one call between two steps.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from concurrent.futures import CancelledError, Future
from dataclasses import replace

import numpy as np

from runtimes.base import Decoded, DecodingOptions
from runtimes.decode.filters import Chain
from runtimes.decode.step import (
    StepModel,
    SuppressRules,
    avg_logprob,
    choose,
    encoder_pass,
    most_likely,
    prompt_pass,
)
from runtimes.serve.batcher import DynamicBatcher, RunBatch, _Job
from runtimes.serve.jobs import BatchKey
from runtimes.serve.rows import Rows, Slots, merge, select


class IterationBatcher(DynamicBatcher):
    """``DynamicBatcher``'s interface; jobs whose ``BatchKey.steps`` (greedy decoding of a
    ``WindowJob``) decode step by step through ``runtimes.decode.step.choose``, the offline
    loops' step; this class only decides which rows join and leave at each step. The key's
    ``timestamps`` picks a row's logit filters and whether it is scored.

    Args:
        model: a graph runtime whose decoder step takes ``cache_lengths``.
        options: decoding options (greedy only).
        rules: the model's suppress rules.
        run: called as ``run(key, payloads)`` for jobs of any other key.
        max_batch: most rows decoding at once.
        max_wait_s: how long the first job waits for others when nothing is running.
        observe: called with the number of rows of each decoder step.
    """

    def __init__(self, model: StepModel, options: DecodingOptions, rules: SuppressRules,
                 run: RunBatch, max_batch: int, max_wait_s: float,
                 observe: Callable[[int], None] = lambda size: None) -> None:
        if options.beam_size != 1:
            raise ValueError("iteration-level batching decodes greedily (beam_size 1)")
        super().__init__(run, max_batch, max_wait_s, observe)
        self.model, self.options, self.rules = model, options, rules
        self._chains: dict[bool, Chain] = {}  # per key.timestamps, built on use
        self._slots: Slots | None = None  # allocated at the first join
        self._abandoned: set[Future] = set()  # running rows whose request gave up

    def abandon(self, futures: list[Future]) -> None:
        """Queued jobs are dropped, and running rows leave the batch at the next step, so
        a timed-out request stops taking a row."""
        super().abandon(futures)
        with self._cond:
            self._abandoned.update(f for f in futures if not f.done())

    def _loop(self) -> None:
        rows: Rows | None = None
        while not self._closed:
            jobs = self._take(0 if rows is None else len(rows.jobs))
            try:
                self._run_others([job for job in jobs if not _generates(job.key)])
                new = [job for job in jobs if _generates(job.key)]
                if new:
                    rows = self._join(rows, new)
                if rows is not None:
                    rows = self._step(rows)
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting requests
                _fail([*jobs, *(rows.jobs if rows else [])], exc)
                rows = None
        if rows is not None:  # closed mid-transcript (queued jobs are failed by close())
            _fail(rows.jobs, RuntimeError("the server is shutting down"))

    def _take(self, running: int) -> list[_Job]:
        """Jobs to admit before the next step: waits (as ``DynamicBatcher``) only when no
        row is running; otherwise takes what is queued, up to the free rows."""
        if running == 0:
            return self._next_batch_any()
        with self._cond:
            return self._pop(self.max_batch - running)

    def _next_batch_any(self) -> list[_Job]:
        """Like ``DynamicBatcher._next_batch``, but generate jobs of any prompt length
        batch together (each row keeps its own cache length)."""
        with self._cond:
            while not self._pending and not self._closed:
                self._cond.wait()
            if self._closed:
                return []
            deadline = max(self._pending[0].enqueued, self._idle_since) + self.max_wait_s
            while len(self._pending) < self.max_batch and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            return self._pop(self.max_batch)

    def _pop(self, free: int) -> list[_Job]:
        """Every queued job, but generate jobs only up to ``free`` (caller holds the lock);
        cancelled ones are dropped."""
        taken = []
        for job in list(self._pending):
            if _generates(job.key):
                if free <= 0:
                    continue
                free -= 1
            self._pending.remove(job)
            taken.append(job)
        return [job for job in taken if job.future.set_running_or_notify_cancel()]

    def _run_others(self, jobs: list[_Job]) -> None:
        """One call per key for the non-generate jobs (language detection)."""
        for key in dict.fromkeys(job.key for job in jobs):
            group = [job for job in jobs if job.key == key]
            self.observe(len(group))
            try:
                results = self._run(key, [job.payload for job in group])
            except BaseException as exc:  # noqa: BLE001
                for job in group:
                    job.future.set_exception(exc)
                continue
            for job, result in zip(group, results):
                job.future.set_result(result)

    def _join(self, rows: Rows | None, jobs: list[_Job]) -> Rows:
        """Encode the new windows, decode their prompts, and add them to the batch."""
        model = self.model
        cross = encoder_pass(model, np.ascontiguousarray(np.stack([j.payload.features
                                                                    for j in jobs])))
        if self._slots is None:
            self._slots = Slots(cross, self.max_batch)
        running = 0 if rows is None else len(rows.jobs)
        parts = [] if rows is None else [rows]
        by_length: dict[int, list[int]] = {}
        for i, job in enumerate(jobs):
            by_length.setdefault(len(job.payload.prompt), []).append(i)
        for length, index in by_length.items():
            group = np.asarray(index)
            group_cross = cross if len(group) == len(jobs) else model.select(cross, group)
            self._slots.write(running, group_cross)
            running += len(group)
            prompts = np.asarray([jobs[i].payload.prompt for i in index], np.int64)
            scored = any(jobs[i].key.timestamps for i in index)
            logits, cache, no_speech = prompt_pass(model, prompts, group_cross, self.rules,
                                                   scored)
            parts.append(Rows([jobs[i] for i in index], [[] for _ in index],
                               np.full(len(group), length), cache, logits,
                               np.zeros(len(group)), no_speech))
        return merge(model, parts)

    def _step(self, rows: Rows) -> Rows | None:
        """Every row's next token (the shared step); finished and abandoned rows leave;
        one decoder step for the rest."""
        scored = np.asarray([job.key.timestamps for job in rows.jobs])
        choice = choose(rows.logits, rows.out, lambda logits, _: self._filter(rows),
                        most_likely, self.rules.eot, self.options.max_new_tokens,
                        scored=scored)
        rows.sums += choice.logprobs
        with self._cond:
            self._abandoned = {f for f in self._abandoned if not f.done()}
            abandoned = set(self._abandoned)
        keep = []
        for i, ended in enumerate(choice.ended):
            if rows.jobs[i].future in abandoned:
                rows.jobs[i].future.set_exception(CancelledError("the request gave up"))
            elif ended:
                rows.jobs[i].future.set_result(_decoded(rows, i))
            else:
                keep.append(i)
        if not keep:
            self._idle_since = time.monotonic()
            return None
        tokens = choice.tokens
        if len(keep) < len(tokens):
            order = self._compact(keep)
            rows, tokens = select(self.model, rows, order), tokens[order]
        self.observe(len(keep))
        cross = self._slots.view(len(keep))
        rows.logits, rows.cache = self.model.decode_step(tokens[:, None].astype(np.int64),
                                                         rows.cache, cross, rows.lengths)
        rows.lengths = rows.lengths + 1
        return rows

    def _filter(self, rows: Rows) -> None:
        """The offline loops' logit filters (so tokens agree), per row's timestamps flag:
        requests with and without timestamps share the batch."""
        flags = np.asarray([job.key.timestamps for job in rows.jobs])
        if flags.all() or not flags.any():
            self._chain(bool(flags[0])).apply(rows.logits, rows.out)
            return
        for flag in (False, True):
            index = np.flatnonzero(flags == flag)
            part = rows.logits[index]
            self._chain(flag).apply(part, [rows.out[i] for i in index])
            rows.logits[index] = part

    def _chain(self, timestamps: bool) -> Chain:
        if timestamps not in self._chains:
            options = replace(self.options, timestamps=timestamps)
            self._chains[timestamps] = self.rules.chain(options)
        return self._chains[timestamps]

    def _compact(self, keep: list[int]) -> np.ndarray:
        """Move kept rows from beyond the new batch size into the places of rows that left;
        return the new row order (old row index per new row)."""
        size, kept = len(keep), set(keep)
        holes = [i for i in range(size) if i not in kept]
        movers = [i for i in keep if i >= size]
        order = np.arange(size)
        for hole, mover in zip(holes, movers):
            self._slots.move(hole, mover)
            order[hole] = mover
        return order


def _decoded(rows: Rows, i: int) -> Decoded:
    """Row i's result; scored (timestamped requests) as ``runtimes.decode.step.avg_logprob`` scores it."""
    out = rows.out[i]
    if not rows.jobs[i].key.timestamps:
        return Decoded(out)
    return Decoded(out, avg_logprob(rows.sums[i], len(out)), float(rows.no_speech[i]))


def _fail(jobs: list[_Job], exc: BaseException) -> None:
    for job in jobs:
        if not job.future.done():
            job.future.set_exception(exc)


def _generates(key: Hashable) -> bool:
    return isinstance(key, BatchKey) and key.steps
