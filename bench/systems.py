"""What a bench row runs: a toolkit artifact, the PyTorch baseline, or faster-whisper itself.

Each system exposes ``transcribe(list of 16 kHz arrays, batch_size) -> list[Output]`` (text
and generated token ids) so the worker times them all the same way. faster-whisper is the
reference users know; it runs its own feature extraction and ``transcribe`` loop, with
decoding settings matched to ours.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Protocol

import numpy as np

from runtimes.audio.features import single_threaded_blas
from runtimes.base import DecodingOptions, RuntimeOptions


@dataclass(frozen=True)
class SystemSpec:
    """A bench row, serialisable to JSON for the worker process.

    Attributes:
        name: label in the report.
        kind: "toolkit" (any artifact or model dir via runtimes.load), "faster-whisper"
            (``WhisperModel.transcribe``) or "faster-whisper-batched" (its
            ``BatchedInferencePipeline``, VAD-packed windows decoded in batches).
        path: artifact / model directory.
        precision: compute precision override (None = the artifact's own).
        baseline: whether ΔWER is measured against this row.
        peer: another tool, run as its own users run it (``bench.peers``); the
            recommendation considers toolkit artifacts only.
        pack: a toolkit row that packs short clips into shared windows
            (``runtimes.transcript.packing``).
    """

    name: str
    kind: str
    path: str
    precision: str | None = None
    baseline: bool = False
    peer: bool = False
    pack: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


#: One transcript: its text and the generated token ids (special tokens excluded).
Output = tuple[str, list[int]]


class System(Protocol):
    runtime_name: str
    precision: str
    batching: bool
    backend: str  # where it ran, e.g. "CUDAExecutionProvider, CPUExecutionProvider"
    #: A batch's windows run one after another (no batch API, e.g. whisper.cpp): its
    #: batched figures are sequential decoding and the report marks them so.
    sequential_batches: bool

    def transcribe(self, audio: list[np.ndarray], batch_size: int) -> list[Output]: ...

    def segment_starts(self, audio: list[np.ndarray], batch_size: int) -> list[list[float]]:
        """Each recording's segment starts (seconds), decoded with timestamps."""
        ...

    def word_starts(self, audio: list[np.ndarray],
                    batch_size: int) -> list[list[tuple[str, float]]] | None:
        """Each recording's (word, start) pairs from word timestamps; None where this
        system cannot align."""
        ...


class ToolkitSystem:
    """Any artifact through ``runtimes.load`` and the shared pipeline."""

    batching = True

    def __init__(self, spec: SystemSpec, runtime: RuntimeOptions, decoding: DecodingOptions):
        import runtimes

        options = replace(runtime, precision=spec.precision)
        self._model = runtimes.load(Path(spec.path), options, decoding)
        self.runtime_name = self._model.runtime.format
        self.precision = self._model.runtime.precision
        self.backend = self._model.runtime.backend
        self.sequential_batches = self._model.runtime.sequential_batches
        self._pack = spec.pack

    def transcribe(self, audio: list[np.ndarray], batch_size: int) -> list[Output]:
        eot = self._model.tokenizer.eot  # text ids only: timestamps (sequential) left out
        return [(t.text, [i for i in t.tokens if i < eot])
                for t in self._model.transcribe(audio, batch_size=batch_size, pack=self._pack)]

    def segment_starts(self, audio: list[np.ndarray], batch_size: int) -> list[list[float]]:
        from runtimes.errors import OptionError

        try:
            stamped = self._with(timestamps=True)
        except OptionError:  # a runtime that decodes text only (whisper.cpp): no column
            return []
        return [[s.start for s in t.segments] for t in stamped.transcribe(audio, batch_size)]

    def word_starts(self, audio: list[np.ndarray],
                    batch_size: int) -> list[list[tuple[str, float]]] | None:
        if not self._model.runtime.aligns:
            return None  # e.g. an ONNX artifact exported without --word-timestamps
        found = self._with(word_timestamps=True).transcribe(audio, batch_size)
        return [[(w.word, w.start) for s in t.segments for w in s.words] for t in found]

    def _with(self, **decoding):
        """The loaded model with other decoding options (the runtime is shared)."""
        from runtimes.transcript.pipeline import Transcriber

        model = self._model
        return Transcriber(model.runtime, model.tokenizer, replace(model.options, **decoding))


class FasterWhisperSystem:
    """``faster_whisper.WhisperModel`` used directly, as its users would (batch 1 only:
    its ``transcribe`` takes one recording at a time)."""

    runtime_name = "faster-whisper"
    batching = False
    sequential_batches = False

    def __init__(self, spec: SystemSpec, runtime: RuntimeOptions, decoding: DecodingOptions):
        from faster_whisper import WhisperModel

        self.precision = spec.precision or "default"
        self.backend = f"ctranslate2 {runtime.device}"
        self._decoding = decoding
        self._model = WhisperModel(spec.path, device=runtime.device, compute_type=self.precision,
                                   cpu_threads=runtime.threads, num_workers=1)

    def transcribe(self, audio: list[np.ndarray], batch_size: int) -> list[Output]:
        # numpy's BLAS on one thread, as in the toolkit's log-mel (runtimes.audio.features): its
        # feature extractor's matmul would otherwise leave OpenBLAS threads spinning on the
        # cores CTranslate2 needs, and this row should show faster-whisper at its best.
        with single_threaded_blas():
            return [self._output(self._one(samples)) for samples in audio]

    def _one(self, samples: np.ndarray, timestamps: bool = False, words: bool = False) -> list:
        """Its segments of one recording. It always seeks openai-style; it is prompted with
        the previous text only where our rows are (``long_form="sequential"`` with
        ``condition_on_previous_text``)."""
        d = self._decoding
        segments, _ = self._model.transcribe(
            samples, beam_size=d.beam_size, temperature=0.0, language=d.language,
            task=d.task, without_timestamps=not (timestamps or words or d.timestamps),
            word_timestamps=words,
            condition_on_previous_text=d.long_form == "sequential" and d.condition_on_previous_text,
            vad_filter=False, suppress_blank=d.suppress_blank, suppress_tokens=[-1],
            # Its default max_length (448) is what decodes up to 224 new tokens, our
            # default: CTranslate2 halves max_length, and faster-whisper's own
            # max_new_tokens (prompt + N) would cap it at (prompt + 224) / 2.
            max_new_tokens=None,
        )
        return list(segments)  # a lazy generator: decoding happens here

    def segment_starts(self, audio: list[np.ndarray], batch_size: int) -> list[list[float]]:
        with single_threaded_blas():
            return [[s.start for s in self._one(samples, True)] for samples in audio]

    def word_starts(self, audio: list[np.ndarray],
                    batch_size: int) -> list[list[tuple[str, float]]] | None:
        with single_threaded_blas():
            return [[(w.word, w.start) for s in self._one(samples, words=True) for w in s.words]
                    for samples in audio]

    def _output(self, segments: list) -> Output:
        text = " ".join(s.text.strip() for s in segments).strip()
        eot = self._model.hf_tokenizer.token_to_id("<|endoftext|>")
        return text, [t for s in segments for t in s.tokens if t < eot]


class FasterWhisperBatchedSystem(FasterWhisperSystem):
    """faster-whisper's ``BatchedInferencePipeline``: each recording's speech, found by VAD,
    packed into <= 30 s windows that are decoded ``batch_size`` at a time (what its users run
    on long recordings). One recording per call, as its API takes."""

    runtime_name = "faster-whisper batched"
    batching = True

    def __init__(self, spec: SystemSpec, runtime: RuntimeOptions, decoding: DecodingOptions):
        from faster_whisper import BatchedInferencePipeline

        super().__init__(spec, runtime, decoding)
        self._pipeline = BatchedInferencePipeline(self._model)

    def transcribe(self, audio: list[np.ndarray], batch_size: int) -> list[Output]:
        with single_threaded_blas():
            return [self._output(self._batched(samples, batch_size)) for samples in audio]

    def _batched(self, samples: np.ndarray, batch_size: int, timestamps: bool = False,
                 words: bool = False) -> list:
        d = self._decoding
        segments, _ = self._pipeline.transcribe(
            samples, beam_size=d.beam_size, temperature=0.0, language=d.language, task=d.task,
            without_timestamps=not (timestamps or words or d.timestamps),
            word_timestamps=words, suppress_blank=d.suppress_blank,
            suppress_tokens=[-1], batch_size=batch_size, log_progress=False,
        )
        return list(segments)

    def segment_starts(self, audio: list[np.ndarray], batch_size: int) -> list[list[float]]:
        with single_threaded_blas():
            return [[s.start for s in self._batched(samples, batch_size, True)]
                    for samples in audio]

    def word_starts(self, audio: list[np.ndarray],
                    batch_size: int) -> list[list[tuple[str, float]]] | None:
        with single_threaded_blas():
            return [[(w.word, w.start) for s in self._batched(samples, batch_size, words=True)
                     for w in s.words] for samples in audio]


def faster_whisper_rows(source, artifacts: dict[str, Path], compute_type: str,
                        batched_compute_type: str) -> tuple[list[SystemSpec], list[str]]:
    """The faster-whisper reference rows ("none" leaves one out), and a note when they
    cannot run. faster-whisper needs a CTranslate2 directory: the source's own (bundled or
    CTranslate2 sources), else the first CTranslate2 artifact among ``artifacts``
    (row name -> path)."""
    wanted = [(f"faster-whisper {compute_type}", "faster-whisper", compute_type),
              (f"faster-whisper batched {batched_compute_type}", "faster-whisper-batched",
               batched_compute_type)]
    wanted = [w for w in wanted if w[2] != "none"]
    if not wanted:
        return [], []
    directory = source.origin if source.kind in ("bundled", "ctranslate2") else next(
        (p for name, p in artifacts.items() if name.startswith("ctranslate2") and " + " not in name),
        None)
    if directory is None:
        return [], ["faster-whisper rows skipped: no CTranslate2 directory to load"]
    return [SystemSpec(name, kind, str(directory), ct) for name, kind, ct in wanted], []


KINDS = {"toolkit": ToolkitSystem, "faster-whisper": FasterWhisperSystem,
         "faster-whisper-batched": FasterWhisperBatchedSystem}
