"""Load any Whisper artifact behind one interface and transcribe audio with it.

    >>> import runtimes
    >>> model = runtimes.load("artifacts/tiny.en-ct2-int8")
    >>> model.transcribe(["speech.flac"])[0].text

or, in faster-whisper's shape (``runtimes.model``)::

    >>> from runtimes import WhisperModel
    >>> segments, info = WhisperModel("artifacts/tiny.en-ct2-int8").transcribe("speech.flac")

Nothing heavy is imported here; each engine imports its framework when it is used.
"""

from __future__ import annotations

from runtimes.base import DecodingOptions, RuntimeOptions, WhisperRuntime
from runtimes.loading import PLAIN_FORMATS, batch_invariant, check_artifact, load, load_runtime
from runtimes.transcript.pipeline import Transcriber, Transcription

__all__ = [
    "PLAIN_FORMATS", "DecodingOptions", "RuntimeOptions", "Transcriber", "Transcription",
    "WhisperRuntime", "batch_invariant", "check_artifact", "load", "load_runtime",
    "WhisperModel", "BatchedInferencePipeline", "Segment", "Word", "TranscriptionInfo",
    "TranscriptionOptions",
]

#: faster-whisper's names, from ``runtimes.model`` (imported on first use).
MODEL_API = ("WhisperModel", "BatchedInferencePipeline", "Segment", "Word", "TranscriptionInfo",
             "TranscriptionOptions")


def __getattr__(name: str):
    if name in MODEL_API:
        from runtimes import model

        return getattr(model, name)
    raise AttributeError(f"module 'runtimes' has no attribute {name!r}")


