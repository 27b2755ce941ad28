"""A loaded artifact behind the dynamic batcher: uploads in, transcripts with segments out.

Pre-processing is the pipeline's own (PyAV decoding, silence check, Silero-VAD windows for
long uploads, the same log-mel), so a served transcript equals ``python -m runtimes`` on the
same file. Only the model calls go through the batcher; decoding, VAD and the log-mel run
on the request's worker thread, in parallel with the model (the model thread is the
bottleneck under load, so it does nothing else).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np

from runtimes.audio import SAMPLE_RATE, duration_s, is_silence, load_audio_bytes
from runtimes.chunking import Window, split_spans, window_audio
from runtimes.features import log_mel
from runtimes.pipeline import Transcriber, check_language
from runtimes.serve.batcher import DynamicBatcher
from runtimes.serve.stepper import IterationBatcher

_DETECT = ("detect",)


@dataclass(frozen=True)
class Segment:
    """One decoded window: where it lies in the upload (seconds) and what was said."""

    start: float
    end: float
    text: str
    tokens: tuple[int, ...]


@dataclass(frozen=True)
class ServedResult:
    text: str
    language: str
    duration_s: float
    segments: tuple[Segment, ...]


@dataclass(frozen=True)
class PreparedAudio:
    """A decoded upload cut into <= 30 s windows (each the (start, end) sample indices of the
    speech it joins), with the log-mel of each window."""

    samples: np.ndarray
    windows: tuple[Window, ...]
    features: tuple[np.ndarray, ...]

    @property
    def duration_s(self) -> float:
        return duration_s(self.samples)


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
                                    and getattr(runtime, "ragged", False)) else "windows"
        if self.batching == "steps":
            self.batcher: DynamicBatcher = IterationBatcher(
                runtime, options, runtime.rules, self._run, max_batch, max_wait_s, observe_batch)
        else:
            self.batcher = DynamicBatcher(self._run, max_batch, max_wait_s, observe_batch)

    @property
    def multilingual(self) -> bool:
        return self.transcriber.runtime.multilingual

    def check_language(self, language: str | None, task: str) -> None:
        """OptionError for a language or task this model cannot honour (before decoding)."""
        check_language(language, task, self.multilingual)

    def prepare(self, data: bytes, name: str, max_seconds: float | None = None) -> PreparedAudio:
        """Decode, window and log-mel an upload (CPU work; call it off the event loop).

        Raises:
            AudioTooLongError: it decodes past ``max_seconds`` (see runtimes.audio); decoding
                stops there, so a small file claiming hours costs little.
        """
        samples = load_audio_bytes(data, name, max_seconds)
        windows = () if is_silence(samples) else tuple(split_spans(samples))
        n_mels = self.transcriber.runtime.n_mels
        return PreparedAudio(samples, windows,
                             tuple(log_mel(window_audio(samples, w), n_mels) for w in windows))

    async def transcribe(self, audio: PreparedAudio, language: str | None,
                         prompt: str | None, task: str = "transcribe") -> ServedResult:
        """Decode every window of ``audio`` through the batcher."""
        windows = audio.features
        if not windows:
            return ServedResult("", language or "en", audio.duration_s, ())
        if language is None:
            language = await self._language(windows[0])
        tokenizer = self.transcriber.tokenizer
        ids = tokenizer.prompt(language, task)
        if prompt:
            ids = tokenizer.previous_text(prompt) + ids
        key = ("generate", len(ids)) if self.mixes_requests else ("generate", len(ids), id(audio))
        futures = [self.batcher.submit(key, (w, ids)) for w in windows]
        try:
            outputs = await asyncio.gather(*(asyncio.wrap_future(f) for f in futures))
        except asyncio.CancelledError:  # the request timed out (--timeout)
            self.batcher.abandon(futures)
            raise
        segments = tuple(
            Segment(w[0][0] / SAMPLE_RATE, w[-1][1] / SAMPLE_RATE, tokenizer.decode(out),
                    tuple(out))
            for w, out in zip(audio.windows, outputs)
        )
        text = tokenizer.decode([t for out in outputs for t in out])
        return ServedResult(text, language, audio.duration_s, segments)

    async def _language(self, window: np.ndarray) -> str:
        if not self.multilingual:
            return "en"
        return await asyncio.wrap_future(self.batcher.submit(_DETECT, window))

    def _run(self, key: Hashable, payloads: list[Any]) -> list[Any]:
        """One model call on the batcher's thread; payloads carry log-mel windows."""
        runtime = self.transcriber.runtime
        if key == _DETECT:
            return runtime.detect_language(np.ascontiguousarray(np.stack(payloads)))
        features = np.ascontiguousarray(np.stack([window for window, _ in payloads]))
        return runtime.generate(features, [ids for _, ids in payloads], self.transcriber.options)

    def warm_up(self) -> None:
        """One model call on a second of faint noise, so the first request is not the one
        that pays for lazy initialisation."""
        samples = np.random.default_rng(0).normal(0, 1e-3, SAMPLE_RATE).astype(np.float32)
        noise = log_mel(samples, self.transcriber.runtime.n_mels)
        language = "en" if not self.multilingual else None
        if language is None:
            language = self._run(_DETECT, [noise])[0]
        self._run(("generate", 0), [(noise, self.transcriber.tokenizer.prompt(language, "transcribe"))])

    def start(self) -> None:
        self.batcher.start()

    def close(self) -> None:
        self.batcher.close()
        self.transcriber.close()
