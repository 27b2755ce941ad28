"""Loading an artifact: check what it holds, pick its runtime, wrap it in the pipeline.

Apart from ``runtimes/__init__.py`` so that the faster-whisper-shaped API
(``runtimes.model``) can load artifacts without importing the package's front door.
"""

from __future__ import annotations

from pathlib import Path

from runtimes.base import DecodingOptions, RuntimeOptions, WhisperRuntime
from runtimes.transcript.pipeline import Transcriber


def load_runtime(model_dir: str | Path, options: RuntimeOptions | None = None) -> WhisperRuntime:
    """Load the engine for an artifact (or a plain transformers / CTranslate2 directory).

    The runtime is picked from ``artifact.json``. Every file it lists is checked (presence,
    size, place and, unless ``options.verify_checksums`` is off, sha256) before anything is
    loaded, so a truncated or edited artifact fails with a clear error. Without a manifest
    only a plain transformers or CTranslate2 model directory loads.
    """
    from runtimes.engines.registry import runtime_class

    options = options or RuntimeOptions()
    return runtime_class(check_artifact(model_dir, options))(Path(model_dir), options)


def check_artifact(model_dir: str | Path, options: RuntimeOptions | None = None) -> str:
    """What :func:`load_runtime` checks before it loads anything (format, manifest, files,
    digest); returns the format. For a driver that must refuse a bad artifact before it
    schedules work on machines it cannot load it on (another device, another node)."""
    from runtimes.artifacts.manifest import MANIFEST
    from runtimes.engines.registry import detect_format

    model_dir = Path(model_dir)
    fmt = detect_format(model_dir)
    options = options or RuntimeOptions()
    if (model_dir / MANIFEST).is_file():
        _check_artifact(model_dir, options)
    else:
        _check_plain(model_dir, fmt, options)
    return fmt


def batch_invariant(model_dir: str | Path) -> bool:
    """Whether the artifact's results are the same for a window alone and in any batch: its
    manifest says so (``Manifest.batch_invariant``); plain checkpoints are taken to be."""
    from runtimes.artifacts.manifest import MANIFEST, read_manifest

    if not (Path(model_dir) / MANIFEST).is_file():
        return True
    return read_manifest(model_dir).batch_invariant


#: Model directories that load without a manifest: a checkpoint as its own tools write it.
PLAIN_FORMATS = ("transformers", "ctranslate2")


def _check_artifact(model_dir: Path, options: RuntimeOptions) -> None:
    from runtimes.artifacts.manifest import FAMILY, manifest_digest, read_manifest, verify
    from runtimes.errors import ArtifactError

    manifest = read_manifest(model_dir)
    if manifest.family != FAMILY:
        raise ArtifactError(f"{model_dir} holds a {manifest.family!r} model; this toolkit "
                            f"runs {FAMILY!r} artifacts")
    if options.expect_digest and manifest_digest(model_dir) != options.expect_digest:
        raise ArtifactError(f"{model_dir} has manifest digest {manifest_digest(model_dir)}, "
                            f"not the expected {options.expect_digest}")
    verify(model_dir, manifest, checksums=options.verify_checksums)
    if options.device == "cpu":
        _warn_int8_kernels(model_dir, manifest.int8_kernels)


def _check_plain(model_dir: Path, fmt: str, options: RuntimeOptions) -> None:
    from runtimes.artifacts.manifest import MANIFEST
    from runtimes.errors import ArtifactError

    if options.expect_digest:
        raise ArtifactError(f"{model_dir} has no {MANIFEST}, so it cannot match the expected "
                            f"digest {options.expect_digest}")
    if fmt not in PLAIN_FORMATS:
        raise ArtifactError(
            f"{model_dir} is a {fmt} artifact without its {MANIFEST}: nothing vouches for its "
            f"files. Restore the manifest or export it again (only plain transformers and "
            f"CTranslate2 model directories load without one)")


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
    from runtimes.decode.tokens import load_tokenizer

    runtime = load_runtime(model_dir, options)
    try:
        tokenizer = load_tokenizer(Path(model_dir), runtime.multilingual)
        return Transcriber(runtime, tokenizer, decoding or DecodingOptions())
    except BaseException:  # a decoding option the model cannot honour: release it
        runtime.close()
        raise
