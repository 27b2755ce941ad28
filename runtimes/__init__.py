"""Load any Whisper artifact behind one interface and transcribe audio with it.

    >>> import runtimes
    >>> model = runtimes.load("artifacts/tiny.en-ct2-int8")
    >>> model.transcribe(["speech.flac"])[0].text

Nothing heavy is imported here; each engine imports its framework when it is used.
"""

from __future__ import annotations

from pathlib import Path

from runtimes.base import DecodingOptions, RuntimeOptions, WhisperRuntime
from runtimes.pipeline import Transcriber, Transcription

__all__ = [
    "DecodingOptions", "RuntimeOptions", "Transcriber", "Transcription", "WhisperRuntime",
    "load", "load_runtime",
]


def load_runtime(model_dir: str | Path, options: RuntimeOptions | None = None) -> WhisperRuntime:
    """Load the engine for an artifact (or a plain transformers / CTranslate2 directory).

    The runtime is picked from ``artifact.json`` when present. The files listed there are
    checked for presence and size first, so a truncated artifact fails with a clear error.
    """
    from exporters.artifact import MANIFEST, read_manifest, verify
    from runtimes.registry import detect_format, runtime_class

    model_dir = Path(model_dir)
    fmt = detect_format(model_dir)
    if (model_dir / MANIFEST).is_file():
        verify(model_dir, read_manifest(model_dir), checksums=False)
    return runtime_class(fmt)(model_dir, options or RuntimeOptions())


def load(
    model_dir: str | Path,
    options: RuntimeOptions | None = None,
    decoding: DecodingOptions | None = None,
) -> Transcriber:
    """Load an artifact and wrap it in the shared transcription pipeline."""
    from runtimes.tokens import load_tokenizer

    runtime = load_runtime(model_dir, options)
    tokenizer = load_tokenizer(Path(model_dir), runtime.multilingual)
    return Transcriber(runtime, tokenizer, decoding or DecodingOptions())
