"""faster-whisper's Python API on any artifact: ``segments, info = model.transcribe(...)``.

Most users who would switch already call faster-whisper from Python; with this module its
README examples run with only the import changed::

    from runtimes import WhisperModel

    model = WhisperModel("artifacts/tiny.en-onnx-int8", device="cpu", compute_type="int8")
    segments, info = model.transcribe("audio.mp3", beam_size=5)
    for segment in segments:
        print("[%.2fs -> %.2fs] %s" % (segment.start, segment.end, segment.text))

``segments`` is a generator: the audio is read, cut and (if no language is given) its
language detected when ``transcribe`` returns, as faster-whisper does; the decoding runs
window by window as the loop asks for segments, and stops when the loop stops. The
decoding is the toolkit's one core (``runtimes.transcript``), so the segments equal
``runtimes.load(...).transcribe(...)``'s for the same options. What differs from
faster-whisper is listed in docs/coming-from.md and in ``model_options.UNSUPPORTED``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from runtimes.audio.inputs import AudioInput
from runtimes.base import RuntimeOptions
from runtimes.errors import OptionError
from runtimes.model_options import (
    TranscriptionOptions,
    decoding_of,
    runtime_options,
    vad_settings,
)
from runtimes.model_types import Segment, TranscriptionInfo, Word
from runtimes.transcript import segments as core


class WhisperModel:
    """A loaded artifact behind faster-whisper's ``WhisperModel`` API.

    Args:
        model_size_or_path: an artifact directory (any target), or a plain CTranslate2
            (faster-whisper) or transformers model directory. A model name is exported
            first: ``exporters.WhisperModel`` does it on first use.
        device: "cpu", "cuda", or "auto" (cuda when a CUDA GPU is visible).
        compute_type: "default" (the artifact's own precision) or a precision the
            artifact's runtime takes (see runtimes.precision); e.g. "int8" on a
            CTranslate2 artifact.
        cpu_threads: intra-op threads (0 = the runtime's default).
        Other faster-whisper arguments are accepted at their defaults (device_index 0,
        num_workers 1, ...) and refused otherwise, naming the argument.
    """

    def __init__(self, model_size_or_path: str | Path, device: str = "auto",
                 device_index: int | list[int] = 0, compute_type: str = "default",
                 cpu_threads: int = 0, num_workers: int = 1, download_root: str | None = None,
                 local_files_only: bool = False, files: dict | None = None,
                 revision: str | None = None, use_auth_token: str | bool | None = None,
                 **model_kwargs) -> None:
        from runtimes.decode.tokens import load_tokenizer
        from runtimes.loading import load_runtime

        options = runtime_options(model_size_or_path, device, device_index, compute_type,
                                  cpu_threads, num_workers, files, model_kwargs)
        self.model_dir = Path(model_size_or_path)
        self.runtime = load_runtime(self.model_dir, options)
        self.tokenizer = load_tokenizer(self.model_dir, self.runtime.multilingual)
        self.closed = False

    @property
    def options(self) -> RuntimeOptions:
        return self.runtime.options

    @property
    def supported_languages(self) -> list[str]:
        from runtimes.decode.languages import LANGUAGES

        return list(LANGUAGES) if self.runtime.multilingual else ["en"]

    def transcribe(self, audio: AudioInput, language: str | None = None,
                   task: str = "transcribe", **options) -> tuple[Iterator[Segment],
                                                                 TranscriptionInfo]:
        """faster-whisper's ``WhisperModel.transcribe``: (segments generator, info).

        Accepts faster-whisper's keyword arguments; those the toolkit cannot honour are
        refused at a value other than their default, naming the argument and why
        (``runtimes.model_options.UNSUPPORTED``).
        """
        return self._transcribe(audio, language, task, 1, False, options)

    def transcribe_batch(self, audios: Sequence[AudioInput], language: str | None = None,
                         task: str = "transcribe", batch_size: int = 8, pack: bool = False,
                         **options) -> list[tuple[list[Segment], TranscriptionInfo]]:
        """Many inputs in one call, their windows sharing batches of ``batch_size`` (the
        core's batch path, which ``python -m runtimes`` and the server use): for each
        input, its segments (a list: the call decodes everything) and info, with
        ``transcribe``'s options and defaults. On a batch-invariant artifact each equals
        ``transcribe``'s for that input alone.

        ``pack``: short clips of this call also share 30 s windows, several clips in one
        (docs/packing.md): faster on many short files, and a clip's text then depends on
        the clips beside it. Needs an artifact that aligns words."""
        from runtimes.audio.inputs import is_single

        if is_single(audios):
            raise OptionError("transcribe_batch takes a list of inputs; transcribe takes one")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise OptionError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        chosen = TranscriptionOptions.of(options)
        if pack:
            from runtimes.transcript.packing import check_packing

            check_packing(self.runtime)  # before reading and cutting every input
        inputs = [self._prepare(audio, language, chosen) for audio in audios]
        transcriber = self._transcriber(chosen, language, task)
        words = chosen.word_timestamps
        found = dict(_packed(transcriber, inputs, batch_size, words)) if pack else {}
        rest = [i for i in range(len(inputs)) if i not in found]
        found.update((i, []) for i in rest)
        for window in _windows(transcriber, [inputs[i] for i in rest], batch_size):
            mine = found[rest[window.owner]]
            mine += [_segment(len(mine) + i + 1, window.start, part, words)
                     for i, part in enumerate(window.segments)]
        return [(found[i], one.info) for i, one in enumerate(inputs)]

    def _transcribe(self, audio: AudioInput, language: str | None, task: str,
                    batch_size: int, batched: bool, options: dict
                    ) -> tuple[Iterator[Segment], TranscriptionInfo]:
        chosen = TranscriptionOptions.of(options, batched)
        one = self._prepare(audio, language, chosen)
        transcriber = self._transcriber(chosen, one.info.language, task)
        return _segments(self, transcriber, one, batch_size), one.info

    def _prepare(self, audio: AudioInput, language: str | None,
                 chosen: TranscriptionOptions) -> _Input:
        """One input read, cut into VAD windows (with ``vad_filter``) and its language
        given or detected: what ``transcribe`` does before returning."""
        from runtimes.audio.inputs import read_input
        from runtimes.transcript.pipeline import cut

        samples, _ = read_input(audio)
        vad = vad_settings(chosen.vad_parameters) if chosen.vad_filter else None
        cuts = cut(samples, vad) if vad else []
        language, probs = self._language(samples, cuts, language)
        info = TranscriptionInfo(
            language, probs.get(language, 1.0), samples.size / 16000,
            _after_vad(samples, cuts),
            sorted(probs.items(), key=lambda p: -p[1]) if len(probs) > 1 else None, chosen,
            vad)
        return _Input(samples, cuts, info)

    def _transcriber(self, chosen: TranscriptionOptions, language: str | None, task: str):
        from runtimes.transcript.pipeline import Transcriber

        return Transcriber(self.runtime, self.tokenizer, decoding_of(chosen, language, task))

    def _language(self, samples: np.ndarray, cuts, language: str | None
                  ) -> tuple[str, dict[str, float]]:
        """The language and its probabilities: given, "en" for English-only models, else
        detected on the first window (the first VAD window, or the first 30 s)."""
        from runtimes.audio.features import N_SAMPLES, batch_log_mel
        from runtimes.transcript.pipeline import check_language

        if language is not None or not self.runtime.multilingual:
            check_language(language, "transcribe", self.runtime.multilingual)
            return language or "en", {}
        first = cuts[0][1] if cuts else samples[:N_SAMPLES]
        probs = self.runtime.language_probabilities(
            batch_log_mel([first], self.runtime.n_mels))[0]
        return max(probs, key=probs.__getitem__), probs

    def close(self) -> None:
        """Release the model; segments not yet read can no longer be decoded."""
        self.closed = True
        self.runtime.close()

    def __enter__(self) -> WhisperModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class BatchedInferencePipeline:
    """faster-whisper's ``BatchedInferencePipeline``: VAD windows of speech, ``batch_size``
    of them decoded together (the toolkit's default long-form mode)."""

    def __init__(self, model: WhisperModel) -> None:
        if not isinstance(model, WhisperModel):
            raise OptionError(f"BatchedInferencePipeline takes a runtimes.WhisperModel, not "
                              f"{type(model).__name__}")
        self.model = model

    def transcribe(self, audio: AudioInput, language: str | None = None,
                   task: str = "transcribe", batch_size: int = 8, **options
                   ) -> tuple[Iterator[Segment], TranscriptionInfo]:
        """faster-whisper's ``BatchedInferencePipeline.transcribe``: (segments, info)."""
        if not isinstance(batch_size, int) or batch_size < 1:
            raise OptionError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        return self.model._transcribe(audio, language, task, batch_size, True, options)


def _after_vad(samples: np.ndarray, cuts: list) -> float:
    """Seconds of audio the windows hold (all of it in sequential mode)."""
    if not cuts:
        return samples.size / 16000
    return sum(end - start for spans, _ in cuts for start, end in spans) / 16000


@dataclass(frozen=True)
class _Input:
    """One input ready to decode: its samples, VAD windows (none: sequential) and info."""

    samples: np.ndarray
    cuts: list
    info: TranscriptionInfo


def _windows(transcriber, inputs: Sequence[_Input], batch_size: int) -> Iterator[core.WindowText]:
    """What each window adds to its input's transcript, decoded lazily by the one core:
    VAD windows, or sequential seeking over the inputs that are not silence."""
    from runtimes.transcript.pipeline import windows_of
    from runtimes.transcript.sequential import iter_sequential

    languages = [one.info.language for one in inputs]
    if transcriber.options.long_form == "vad":
        yield from transcriber.decode_windows(windows_of([one.cuts for one in inputs]),
                                              languages, batch_size)
        return
    kept = [i for i, one in enumerate(inputs) if one.samples.size and not _silent(one.samples)]
    for window in iter_sequential(transcriber, [inputs[i].samples for i in kept],
                                  [languages[i] for i in kept], batch_size):
        yield replace(window, owner=kept[window.owner])


def _segments(model: WhisperModel, transcriber, one: _Input,
              batch_size: int) -> Iterator[Segment]:
    """The lazy loop: each window decoded when the caller asks for its segments."""
    stream = _windows(transcriber, [one], batch_size)
    number = 0
    while True:
        if model.closed:
            raise OptionError("the WhisperModel was closed before its segments were read: "
                              "iterate them before closing it (or leaving its with block)")
        if (window := next(stream, None)) is None:
            return
        for part in window.segments:
            number += 1
            yield _segment(number, window.start, part, transcriber.options.word_timestamps)


def _silent(samples: np.ndarray) -> bool:
    from runtimes.audio.files import is_silence

    return is_silence(samples)


def _packed(transcriber, inputs: Sequence[_Input], batch_size: int,
            words: bool) -> Iterator[tuple[int, list[Segment]]]:
    """The segments of the inputs decoded in packed windows (``Transcriber.pack_clips``),
    by input index; the others are not yielded."""
    from runtimes.transcript.packing import packable

    languages = [one.info.language if packable(one.samples) else None for one in inputs]
    for owner, parts in transcriber.pack_clips([one.samples for one in inputs], languages,
                                               batch_size):
        yield owner, [_segment(n, 0, part, words) for n, part in enumerate(parts, start=1)]


def _segment(number: int, start: int, part: core.Segment, words: bool) -> Segment:
    """faster-whisper's segment of a core one; ``start``: its window's first sample."""
    return Segment(
        number, start // 160, part.start, part.end, part.text, list(part.tokens),
        part.avg_logprob, part.compression_ratio, part.no_speech_prob,
        [Word(w.start, w.end, w.word, w.probability) for w in part.words] if words else None,
        part.temperature)
