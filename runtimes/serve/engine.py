"""A loaded artifact behind the dynamic batcher: uploads in, transcripts with segments out.

Pre-processing is the pipeline's own (PyAV decoding, silence check, Silero-VAD windows for
long uploads, the same log-mel), so a served transcript equals ``python -m runtimes`` on the
same file. Only the model calls go through the batcher; decoding, VAD and the log-mel run
on the request's worker thread, in parallel with the model (the model thread is the
bottleneck under load, so it does nothing else).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from runtimes.audio.chunking import Window, WindowStream
from runtimes.audio.features import log_mel
from runtimes.audio.files import SAMPLE_RATE, AudioReport, stream_audio_bytes
from runtimes.base import Decoded
from runtimes.serve.batcher import DynamicBatcher
from runtimes.serve.jobs import DETECT, BatchKey, WindowJob
from runtimes.serve.stepper import IterationBatcher
from runtimes.transcript.pipeline import Transcriber, check_language
from runtimes.transcript.segments import Segment, assemble, window_duration
from runtimes.transcript.words import Word, align_windows


@dataclass(frozen=True)
class ServedResult:
    """One request's transcript; ``audio`` says what decoding the upload found."""

    text: str
    language: str
    duration_s: float
    segments: tuple[Segment, ...]
    audio: AudioReport


class ServeEngine:
    """Runs every model call of every request through one ``DynamicBatcher``.

    Args:
        transcriber: the loaded artifact (runtime, tokenizer, decoding options).
        max_batch: most windows per model call (1 = batching off).
        max_wait_s: how long a window may wait for others.
        observe_batch: called with each batch's size.
        batching: "steps" for iteration-level batching where the artifact and decoding
            allow it (see ``runtimes.serve.stepper``), else "windows".
    """

    def __init__(self, transcriber: Transcriber, max_batch: int, max_wait_s: float,
                 observe_batch: Callable[[int], None] = lambda size: None,
                 batching: str = "steps", batch_invariant: bool = True) -> None:
        self.transcriber = transcriber
        runtime, options = transcriber.runtime, transcriber.options
        #: Whether windows of different requests may share a model call: not for precisions
        #: whose results depend on the batch (the manifest's "batch_invariant"), so a
        #: request's transcript never depends on strangers' audio.
        self.mixes_requests = batch_invariant
        self.batching = "steps" if (batching == "steps" and max_batch > 1 and batch_invariant
                                    and options.beam_size == 1
                                    and runtime.ragged) else "windows"
        if self.batching == "steps":
            self.batcher: DynamicBatcher = IterationBatcher(
                runtime, options, runtime.rules, self._run, max_batch, max_wait_s, observe_batch)
        else:
            self.batcher = DynamicBatcher(self._run, max_batch, max_wait_s, observe_batch)
        #: Windows one request may have waiting in the batcher: enough to fill two batches,
        #: few enough that a long upload's log-mels are not all held at once (1 MB each).
        self.max_in_flight = 2 * max_batch

    @property
    def multilingual(self) -> bool:
        return self.transcriber.runtime.multilingual

    def check_language(self, language: str | None, task: str) -> None:
        """OptionError for a language or task this model cannot honour (before decoding)."""
        check_language(language, task, self.multilingual)

    async def transcribe_upload(self, data: bytes, name: str, language: str | None,
                                prompt: str | None, task: str = "transcribe",
                                max_seconds: float | None = None,
                                timestamps: bool = False,
                                temperature: float = 0.0, words: bool = False) -> ServedResult:
        """Decode, window and transcribe an upload as a stream: blocks are decoded, windowed
        and log-mel'd on a worker thread while earlier windows are in the batcher, and at most
        ``max_in_flight`` windows wait there, so a 3-hour upload holds a block of samples and
        a few windows, not 690 MB of float32 plus 350 MB of log-mel (issue 15).
        ``timestamps``: decode Whisper's timestamp tokens, so the segments are the model's
        own (else one per window). ``temperature`` > 0: each window is sampled
        (``best_of`` candidates, seeded by its place in the upload), in one model call per
        batch rather than step by step. ``words``: each window is also aligned (word
        timestamps) in the same model call as its decoding, so its log-mel is not kept
        after it.

        Raises:
            AudioError: the upload is not audio (any window already submitted is abandoned).
            AudioTooLongError: it decodes past ``max_seconds`` (see runtimes.audio.limits); decoding
                stops there, so a small file claiming hours costs little.
        """
        report = AudioReport()
        stream = WindowStream(stream_audio_bytes(data, name, max_seconds, report=report))
        windows = iter(stream)
        fallback = temperature == 0 and self.transcriber.options.fallback
        timestamps = timestamps or fallback  # scores come with timestamped decoding
        sent = _Sent(self.batcher, self.max_in_flight)
        first: _First | None = None
        try:
            while (item := await asyncio.to_thread(self._next_window, windows)) is not None:
                window, features = item
                if first is None:
                    language, ids = await self._prompt(features, language, prompt, task,
                                                       timestamps)
                    request = None if self.mixes_requests else id(sent)
                    first = _First(BatchKey.of(len(ids), timestamps or words, temperature,
                                               request, words), ids,
                                   self.transcriber.tokenizer.prompt(language, task), language)
                payload = first.job(window, features, len(sent.windows), words)
                if fallback:
                    await sent.add(window, self._with_fallback(first.key, payload,
                                                               sent.submitted))
                else:
                    await sent.add(window, sent.submit(first.key, payload))
            outputs = await sent.gather()
        except BaseException:  # a timeout (--timeout), or the upload failed mid-way
            sent.abandon()
            raise
        return self._result(sent.windows, outputs, language, stream.n_samples / SAMPLE_RATE,
                            timestamps or words, report)

    def _next_window(self, windows) -> tuple[Window, np.ndarray] | None:
        """The next window and its log-mel (on a worker thread: CPU work)."""
        item = next(windows, None)
        return None if item is None else (item[0], log_mel(item[1], self.transcriber.runtime.n_mels))

    async def _with_fallback(self, key: BatchKey, payload: WindowJob,
                             submitted: list[Future]):
        """One window through the options' temperature ladder (``runtimes.decode.fallback.ladder``,
        the offline pipeline's): decoded greedily with the others (step by step where the
        artifact allows), then sampled at each temperature the ladder asks for (``best_of``
        candidates, seeded by the window's place); a window judged silent gives no text.
        Its log-mel is held until it is settled."""
        from runtimes.decode.fallback import ladder, silent

        text = lambda out: self.transcriber.tokenizer.decode(_decoded(out).tokens)  # noqa: E731
        steps = ladder(self.transcriber.options, _decoded, text)
        next(steps)  # the first rung is the greedy pass ``key`` already asks for
        while True:
            submitted.append(self.batcher.submit(key, payload))
            out = await asyncio.wrap_future(submitted[-1])
            try:
                temperature = steps.send(out)
            except StopIteration as done:
                out, quiet = done.value
                break
            key = BatchKey.of(key.prompt_length, True, temperature, key.request,
                              key.kind == "words")
        if not quiet:
            return out
        return (silent(out[0]), []) if isinstance(out, tuple) else silent(out)

    async def _prompt(self, first: np.ndarray, language: str | None, prompt: str | None,
                      task: str, timestamps: bool) -> tuple[str, list[int]]:
        """The language (detected on the first window when not given) and the prompt ids."""
        if language is None:
            language = await self._language(first)
        tokenizer = self.transcriber.tokenizer
        ids = tokenizer.prompt(language, task, timestamps)
        if prompt:
            ids = tokenizer.previous_text(prompt) + ids
        return language, ids

    def _result(self, windows: list[Window], outputs: list, language: str | None,
                duration: float, timestamps: bool, report: AudioReport) -> ServedResult:
        """Outputs are ``Decoded``, or (``Decoded``, words) when words were asked for."""
        tokenizer = self.transcriber.tokenizer
        segments: list = []
        for window, out in zip(windows, outputs):
            decoded, words = out if isinstance(out, tuple) else (out, None)
            segments += assemble(window, decoded, tokenizer, timestamps, words)
        text = tokenizer.decode([t for out in outputs
                                 for t in _decoded(out).tokens])
        return ServedResult(text, language or "en", duration, tuple(segments), report)

    async def _language(self, window: np.ndarray) -> str:
        if not self.multilingual:
            return "en"
        return await asyncio.wrap_future(self.batcher.submit(DETECT, window))

    def _run(self, key: BatchKey, payloads: list[Any]) -> list[Any]:
        """One model call on the batcher's thread: log-mel windows (``DETECT``) or
        ``WindowJob``s."""
        runtime = self.transcriber.runtime
        if key == DETECT:
            return runtime.detect_language(np.ascontiguousarray(np.stack(payloads)))
        features = np.ascontiguousarray(np.stack([p.features for p in payloads]))
        options = replace(self.transcriber.options, timestamps=key.timestamps)
        seeds = [options.seed * 1_000_000 + p.place for p in payloads]
        found = runtime.decode(features, [p.prompt for p in payloads], options,
                               key.temperature, seeds)
        return found if key.kind != "words" else self._align(features, payloads, found)

    def _align(self, features: np.ndarray, payloads: list[WindowJob],
               found: list[Decoded]) -> list[tuple[Decoded, list[Word]]]:
        """Each decoded window with its words (window seconds)."""
        words = align_windows(self.transcriber.runtime, self.transcriber.tokenizer, features,
                              [p.plain_prompt for p in payloads], found,
                              [p.frames for p in payloads], [p.language for p in payloads])
        return list(zip(found, words))

    def warm_up(self) -> None:
        """One model call on a second of faint noise, so the first request is not the one
        that pays for lazy initialisation."""
        samples = np.random.default_rng(0).normal(0, 1e-3, SAMPLE_RATE).astype(np.float32)
        noise = log_mel(samples, self.transcriber.runtime.n_mels)
        language = "en" if not self.multilingual else None
        if language is None:
            language = self._run(DETECT, [noise])[0]
        prompt = self.transcriber.tokenizer.prompt(language, "transcribe")
        self._run(BatchKey.of(len(prompt), False, 0.0), [WindowJob(noise, prompt, 0)])

    def start(self) -> None:
        self.batcher.start()

    def close(self) -> None:
        self.batcher.close()
        self.transcriber.close()


def _decoded(out) -> Decoded:
    """The ``Decoded`` of a window's output (words come with it as a tuple)."""
    return out[0] if isinstance(out, tuple) else out


@dataclass(frozen=True)
class _First:
    """What a request's first window settles for all of its windows: the batch key, the
    prompt, and (for words) the prompt without timestamps and the language."""

    key: BatchKey
    prompt: list[int]
    plain_prompt: list[int]
    language: str

    def job(self, window: Window, features: np.ndarray, place: int, words: bool) -> WindowJob:
        payload = WindowJob(features, self.prompt, place)
        if not words:
            return payload
        return replace(payload, frames=round(window_duration(window) * 100),
                       plain_prompt=self.plain_prompt, language=self.language)


class _Sent:
    """One request's windows in the batcher: their results in order, at most
    ``max_in_flight`` waiting at once, and every job abandoned if the request fails."""

    def __init__(self, batcher: DynamicBatcher, max_in_flight: int) -> None:
        self.batcher, self.max_in_flight = batcher, max_in_flight
        self.windows: list[Window] = []
        self.submitted: list[Future] = []  # every batcher job of this request, to abandon
        self.results: list[asyncio.Future] = []

    def submit(self, key: BatchKey, payload: WindowJob) -> asyncio.Future:
        self.submitted.append(self.batcher.submit(key, payload))
        return asyncio.wrap_future(self.submitted[-1])

    async def add(self, window: Window, result) -> None:
        """Record the window and its result; wait while too many are in flight."""
        self.results.append(asyncio.ensure_future(result))
        self.windows.append(window)
        if len(self.results) > self.max_in_flight:
            await self.results[-self.max_in_flight - 1]

    async def gather(self) -> list:
        return list(await asyncio.gather(*self.results))

    def abandon(self) -> None:
        for result in self.results:
            result.cancel()
        self.batcher.abandon(self.submitted)
