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
    from runtimes.artifact import FAMILY, MANIFEST, read_manifest, verify
    from runtimes.errors import ArtifactError
    from runtimes.registry import detect_format, runtime_class

    model_dir = Path(model_dir)
    fmt = detect_format(model_dir)
    options = options or RuntimeOptions()
    if (model_dir / MANIFEST).is_file():
        manifest = read_manifest(model_dir)
        if manifest.family != FAMILY:
            raise ArtifactError(f"{model_dir} holds a {manifest.family!r} model; this toolkit "
                                f"runs {FAMILY!r} artifacts")
        verify(model_dir, manifest, checksums=False)
        if options.device == "cpu":
            _warn_int8_kernels(model_dir, manifest.options.get("int8_kernels"))
    return runtime_class(fmt)(model_dir, options)


def _warn_int8_kernels(model_dir: Path, tuned_for: str | None) -> None:
    """An int8 artifact tuned for VNNI saturates on a CPU without it (see exporters.targets.
    onnx._quantize_int8): it still runs, less accurately, so warn rather than refuse."""
    import warnings

    from runtimes.cpu import cpu_info

    if tuned_for == "vnni" and not cpu_info().int8_dot_product:
        warnings.warn(
            f"{model_dir} has int8 weights tuned for CPUs with VNNI, but this CPU "
            f"({cpu_info().label()}) has none: its int8 products saturate (tiny.en encoder "
            f"error 0.22 instead of 0.08). Re-export with --int8-kernels avx2 for this CPU.",
            stacklevel=3)


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
