"""Audio files -> text with any runtime: decode, window, log-mel, batched generate, detokenise.

Every runtime goes through this one pipeline, so they all see the same samples and the same
features and are scored on the same text.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np

from runtimes.audio.chunking import DEFAULT_VAD, VadSettings, Window, WindowStream, blocks_of
from runtimes.audio.features import N_SAMPLES, batch_log_mel
from runtimes.audio.files import AudioReport, duration_s
from runtimes.audio.inputs import AudioInput, is_single, read_input
from runtimes.base import Decoded, DecodingOptions, WhisperRuntime
from runtimes.decode.fallback import decode_with_fallback
from runtimes.decode.tokens import WhisperTokenizer
from runtimes.transcript.segments import (
    AudioWindow,
    Segment,
    WindowText,
    assemble,
    window_duration,
)
from runtimes.transcript.words import Word, align_windows


@dataclass(frozen=True)
class Transcription:
    """The result for one audio input.

    Attributes:
        text: the transcript; empty for silence.
        tokens: generated ids of all windows, in order (prompts and end tokens excluded).
        duration_s: length of the audio in seconds.
        windows: how many <= 30 s windows were decoded (0 for silence).
        language: the language used (given, detected, or "en" for English-only models).
        segments: Whisper's segments when decoded with ``timestamps`` (times in seconds
            from the start of the audio), else one per window; a window found silent by
            no-speech detection (fallback on) has none.
        audio: what decoding the file found (damaged frames skipped, the duration its
            container declares); None for an array input.
    """

    text: str
    tokens: tuple[int, ...]
    duration_s: float
    windows: int
    language: str
    segments: tuple[Segment, ...] = ()
    audio: AudioReport | None = None


def check_language(language: str | None, task: str, multilingual: bool) -> None:
    """OptionError for a language or task the model cannot honour (an English-only model
    would otherwise ignore them silently)."""
    from runtimes.decode.languages import LANGUAGES
    from runtimes.errors import OptionError

    if task == "translate" and not multilingual:
        raise OptionError("this model is English-only; it cannot translate")
    if language is None:
        return
    if language not in LANGUAGES:
        raise OptionError(f"language {language!r} is not an ISO-639-1 code Whisper knows "
                          f"(e.g. en, de, fr)")
    if not multilingual and language != "en":
        raise OptionError(f"language {language!r}: this model is English-only (use en)")


#: One window of an input: where its speech lies in the input, and its samples.
CutWindow = tuple[Window, np.ndarray]


def cut(audio: np.ndarray, vad: VadSettings = DEFAULT_VAD) -> list[CutWindow]:
    """An input's <= 30 s windows of speech (Silero VAD), as ``Transcriber.transcribe``
    decodes them; none for silence."""
    return list(WindowStream(blocks_of(audio), vad=vad))


def windows_of(cuts: Sequence[list[CutWindow]]) -> list[AudioWindow]:
    """Every input's windows, in order, each knowing its input and its place there."""
    return [AudioWindow(i, spans, samples, index) for i, found in enumerate(cuts)
            for index, (spans, samples) in enumerate(found)]


class Transcriber:
    """A runtime plus the shared pre- and post-processing.

    Args:
        runtime: a loaded runtime.
        tokenizer: the artifact's tokenizer.
        options: decoding settings used for every call.
    """

    def __init__(
        self, runtime: WhisperRuntime, tokenizer: WhisperTokenizer, options: DecodingOptions
    ) -> None:
        check_language(options.language, options.task, runtime.multilingual)
        runtime.check_decoding(options)
        self.runtime = runtime
        self.tokenizer = tokenizer
        self.options = options

    def transcribe(
        self, inputs: AudioInput | Sequence[AudioInput], batch_size: int = 1,
        pack: bool = False,
    ) -> list[Transcription]:
        """Transcribe audio inputs (paths, binary file objects, bytes of audio files or
        16 kHz mono float arrays; one input alone is a list of one), ``batch_size``
        windows at a time.

        Windows of different inputs share batches, so many short clips batch well and one
        long recording is decoded in parallel windows. ``pack``: short clips share windows
        too (``runtimes.transcript.packing``), each a part of a 30 s window.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        read = [read_input(x) for x in ([inputs] if is_single(inputs) else inputs)]
        audios, reports = [a for a, _ in read], [r for _, r in read]
        found = dict(self._packed(audios, batch_size)) if pack else {}
        rest = [i for i in range(len(audios)) if i not in found]
        found.update(zip(rest, self._unpacked([audios[i] for i in rest], batch_size)))
        return [replace(found[i], audio=report) for i, report in enumerate(reports)]

    def _unpacked(self, audios: list[np.ndarray], batch_size: int) -> list[Transcription]:
        if self.options.long_form == "sequential":
            return self._sequential(audios, batch_size)
        return self.transcribe_cut([cut(audio) for audio in audios],
                                   [duration_s(audio) for audio in audios], batch_size)

    def _packed(self, audios: list[np.ndarray],
                batch_size: int) -> Iterator[tuple[int, Transcription]]:
        """The packed clips' transcripts, by input index (the others are not yielded)."""
        from runtimes.transcript.packing import check_packing, packable

        check_packing(self.runtime)  # before the language detection's work
        short = [i for i, audio in enumerate(audios) if packable(audio)]
        firsts = [AudioWindow(i, ((0, audios[i].size),), audios[i]) for i in short]
        found, chosen = self._languages(firsts, len(audios), batch_size), set(short)
        languages = [found[i] if i in chosen else None for i in range(len(audios))]
        for owner, parts in self.pack_clips(audios, languages, batch_size):
            ids = [t for s in parts for t in s.tokens]
            yield owner, Transcription(self.tokenizer.decode(ids), tuple(ids),
                                       duration_s(audios[owner]), 1, languages[owner],
                                       tuple(parts))

    def pack_clips(self, audios: Sequence[np.ndarray], languages: Sequence[str | None],
                   batch_size: int) -> Iterator[tuple[int, list[Segment]]]:
        """(input index, segments) of each clip decoded in a packed window, as windows
        finish; ``languages``: each clip's, None for one not to pack. A clip not yielded
        (not packed, or whose packed words stop before its speech does) is the caller's to
        decode as usual (``runtimes.transcript.packing``).

        Raises:
            OptionError: the artifact cannot align words (packing needs their times).
        """
        from runtimes.transcript.packing import check_packing, decode_packs

        check_packing(self.runtime)  # here, not when the caller starts iterating
        stamped = Transcriber(self.runtime, self.tokenizer,
                              replace(self.options, timestamps=True, word_timestamps=True))
        keep = self.options.word_timestamps
        return ((owner, parts if keep else [replace(s, words=()) for s in parts])
                for owner, parts in decode_packs(stamped, audios, languages, batch_size))

    def transcribe_cut(self, cuts: Sequence[list[CutWindow]], durations: Sequence[float],
                       batch_size: int = 1) -> list[Transcription]:
        """Transcribe inputs already cut into windows by :func:`cut` (``durations`` in
        seconds): the same results as :meth:`transcribe` on their audio, for callers that cut
        elsewhere, such as ``runtimes.batch``'s CPU tasks (VAD windows only)."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        windows = windows_of(cuts)
        n_inputs = len(cuts)
        languages = self._languages(windows, n_inputs, batch_size)
        tokens: list[list[int]] = [[] for _ in range(n_inputs)]
        segments: list[list[Segment]] = [[] for _ in range(n_inputs)]
        for found in self.decode_windows(windows, languages, batch_size):
            tokens[found.owner].extend(found.tokens)
            segments[found.owner] += found.segments
        counts = np.bincount([w.owner for w in windows], minlength=n_inputs)
        return [
            Transcription(self.tokenizer.decode(ids), tuple(ids), seconds, int(n), lang,
                          tuple(parts))
            for ids, seconds, n, lang, parts in zip(tokens, durations, counts, languages,
                                                    segments)
        ]

    def decode_windows(self, windows: Sequence[AudioWindow], languages: list[str],
                       batch_size: int) -> Iterator[WindowText]:
        """What each window adds to its input's transcript, in order, decoded
        ``batch_size`` windows at a time: lazily, so a caller that stops iterating stops
        the work (``runtimes.model``'s segments generator is this loop)."""
        stamps = self.options.timestamps
        for start in range(0, len(windows), batch_size):
            batch = windows[start : start + batch_size]
            prompts = [self.prompt(languages[w.owner]) for w in batch]
            features = batch_log_mel([w.samples for w in batch], self.runtime.n_mels)
            seeds = [self.options.seed * 1_000_000 + w.index for w in batch]
            decoded = self.decode_batch(features, prompts, seeds)
            words = (self._words(features, batch, decoded, languages)
                     if self.options.word_timestamps else [None] * len(batch))
            for window, found, found_words in zip(batch, decoded, words):
                yield WindowText(window.owner, window.spans[0][0], list(found.tokens),
                                 assemble(window.spans, found, self.tokenizer, stamps,
                                          found_words))

    def prompt(self, language: str) -> list[int]:
        """A VAD window's decoder prompt: ``hotwords`` and ``initial_prompt`` as previous
        text (on every window, as the server's ``prompt`` and faster-whisper's batched
        pipeline do), then the start, language, task and timestamp tokens."""
        options = self.options
        initial = self.tokenizer.text_ids(options.initial_prompt) if options.initial_prompt \
            else []
        return self.tokenizer.context(initial, options.hotwords) + self.tokenizer.prompt(
            language, options.task, options.timestamps)

    def _sequential(self, audios: list[np.ndarray], batch_size: int) -> list[Transcription]:
        """openai-style seeking through each recording (``runtimes.transcript.sequential``); a silent
        recording has no windows, as with VAD windows."""
        from runtimes.audio.files import is_silence
        from runtimes.transcript.sequential import transcribe_sequential

        spoken = [i for i, audio in enumerate(audios) if not is_silence(audio)]
        firsts = [AudioWindow(i, ((0, min(audios[i].size, N_SAMPLES)),), audios[i][:N_SAMPLES])
                  for i in spoken]
        languages = self._languages(firsts, len(audios), batch_size)
        found = transcribe_sequential(self, [audios[i] for i in spoken],
                                      [languages[i] for i in spoken], batch_size)
        results = {i: r for i, r in zip(spoken, found)}
        out = []
        for i, (audio, lang) in enumerate(zip(audios, languages)):
            ids, parts, n = results.get(i, ([], [], 0))
            out.append(Transcription(self.tokenizer.decode(ids), tuple(ids), duration_s(audio),
                                     n, lang, tuple(parts)))
        return out

    def decode_batch(self, features: np.ndarray, prompts: list[list[int]],
                     seeds: list[int]) -> list[Decoded]:
        """A batch of log-mel windows decoded with these options: with temperature fallback
        when they ask for it, each window's sampling seeded by ``seeds`` (the VAD windows
        and ``runtimes.transcript.sequential`` both decode through it)."""
        if not self.options.fallback:
            return self.runtime.decode(features, prompts, self.options)
        return decode_with_fallback(self.runtime, self.tokenizer, features, prompts,
                                    self.options, seeds)

    def _words(self, features: np.ndarray, batch: list[AudioWindow], decoded: list[Decoded],
               languages: list[str]) -> list[list[Word]]:
        """Each window's words (window seconds)."""
        return self.align_batch(features, decoded,
                                [round(window_duration(w.spans) * 100) for w in batch],
                                [languages[w.owner] for w in batch])

    def align_batch(self, features: np.ndarray, decoded: list[Decoded], num_frames: list[int],
                    languages: list[str]) -> list[list[Word]]:
        """Each decoded window's words (window seconds), aligned with its text-only prompt
        (the VAD windows and ``runtimes.transcript.sequential`` both align through it)."""
        prompts = [self.tokenizer.prompt(lang, self.options.task) for lang in languages]
        return align_windows(self.runtime, self.tokenizer, features, prompts, decoded,
                             num_frames, languages)

    def _languages(self, windows: list[AudioWindow], n_inputs: int, batch_size: int) -> list[str]:
        """One language per input: the option, "en" for English-only models, else detected
        on the input's first window (so all windows of a recording share one prompt)."""
        fixed = self.options.language or "en"
        if not self.runtime.multilingual or self.options.language is not None:
            return [fixed] * n_inputs
        firsts = list({w.owner: w for w in reversed(windows)}.values())
        languages = [fixed] * n_inputs
        for start in range(0, len(firsts), batch_size):
            batch = firsts[start : start + batch_size]
            features = batch_log_mel([w.samples for w in batch], self.runtime.n_mels)
            for window, lang in zip(batch, self.runtime.detect_language(features)):
                languages[window.owner] = lang
        return languages

    def close(self) -> None:
        self.runtime.close()

    def __enter__(self) -> Transcriber:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
