"""``export()``: the steps every target shares, around one target-specific ``convert``.

resolve source -> check options -> empty temp dir beside the output -> convert -> copy
tokenizer and feature-extractor config -> parity check against the PyTorch reference ->
manifest with checksums -> atomic move into place. Any failure removes the temp dir, so
nothing half-written is ever left at the output path.
"""

from __future__ import annotations

import glob
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import exporters
from exporters import registry, sources
from exporters.bundle import write_bundle
from exporters.errors import ExportError, OutputExistsError
from exporters.options import ExportOptions
from exporters.targets.base import Target
from exporters.validate import check_parity, default_parity_audio, load_reference
from runtimes.artifacts.checkpoint import layer_shapes
from runtimes.artifacts.graph_spec import is_multilingual
from runtimes.artifacts.manifest import (
    FAMILY,
    MANIFEST,
    Manifest,
    describe_files,
    read_manifest,
    write_manifest,
)
from runtimes.base import RuntimeOptions
from runtimes.engines.registry import runtime_class
from runtimes.errors import OptionError, ToolkitError

#: Files every artifact carries besides the weights, copied from the reference checkpoint.
SHARED_FILES = ("tokenizer.json", "preprocessor_config.json")
_MODEL_KEYS = ("vocab_size", "num_mel_bins", "d_model", "encoder_layers", "decoder_layers",
               "encoder_attention_heads", "decoder_attention_heads")


@dataclass(frozen=True)
class ExportResult:
    """Where the artifact went and what it is."""

    path: Path
    manifest: Manifest
    seconds: float


def default_output(model: str, target: str, precision: str) -> Path:
    """``artifacts/<model>-<target>-<precision>`` under the current directory."""
    name = model.removeprefix(sources.BUNDLED_PREFIX).rstrip("/").replace("/", "--")
    return Path("artifacts") / f"{Path(name).name}-{target}-{precision}"


def _package_versions(target: Target) -> dict[str, str]:
    versions = {"toolkit": exporters.__version__, "python": platform.python_version()}
    for package in ("numpy", "torch", "transformers"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return {**versions, **target.versions()}


def _model_info(hf_dir: Path) -> dict:
    config = json.loads((hf_dir / "config.json").read_text())
    info = {key: config[key] for key in _MODEL_KEYS if key in config}
    info["multilingual"] = is_multilingual(config.get("vocab_size", 0))
    shapes = layer_shapes(hf_dir)
    if shapes.pruned(config):  # the config's head counts and widths no longer say it
        info["layer_shapes"] = shapes.to_dict()
    return info


def _copy_shared_files(hf_dir: Path, out_dir: Path) -> None:
    for name in SHARED_FILES:
        if not (out_dir / name).exists():
            shutil.copy2(hf_dir / name, out_dir / name)


@contextmanager
def _step(what: str):
    """Failures of the converters and frameworks a step runs on the user's files (a corrupt
    safetensors file, a config whose vocabulary does not match its weights, a full disk) as
    one ExportError naming the step; ``$WHISPER_EXPORTERS_DEBUG=1`` keeps the traceback."""
    try:
        yield
    except (ToolkitError, KeyboardInterrupt):
        raise
    except Exception as exc:  # noqa: BLE001 - any library's error, reported as the step's
        if os.environ.get("WHISPER_EXPORTERS_DEBUG"):
            raise
        detail = str(exc).strip().splitlines()
        raise ExportError(f"{what} failed: {type(exc).__name__}: "
                          f"{detail[0] if detail else 'no message'}") from exc


def _check_output(output: Path, force: bool) -> None:
    """Before any work: an existing output is refused without ``force``, and with it only an
    artifact (a valid manifest) or an empty directory may be replaced, never a user's data."""
    if not output.exists():
        return
    if not force:
        raise OutputExistsError(f"output directory {output} exists; pass --force to replace it")
    if output.is_dir() and not any(output.iterdir()):
        return
    try:
        read_manifest(output)
    except ToolkitError:
        raise OutputExistsError(
            f"--force replaces artifacts only, and {output} is not one (no valid "
            f"{MANIFEST}); choose another -o or remove it yourself") from None


def _replace(tmp: Path, output: Path, force: bool) -> None:
    """Move ``tmp`` to ``output``. Without ``force`` the rename itself refuses an output
    that appeared meanwhile (another export to the same -o), so nothing is overwritten; with
    it, the existing artifact is checked again and swapped out."""
    if not force:
        try:
            os.rename(tmp, output)  # fails if output is now a file or a non-empty directory
        except OSError:
            raise OutputExistsError(f"output directory {output} appeared while exporting "
                                    f"(another export to it?); nothing replaced") from None
        return
    _check_output(output, force)
    old = None
    if output.exists():
        old = output.with_name(f".{output.name}.old-{os.getpid()}")
        os.replace(output, old)
    os.replace(tmp, output)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _remove_stale(output: Path, log: Callable[[str], None]) -> None:
    """Partial and swapped-out directories that exports to ``output`` left when they were
    killed (SIGKILL leaves them): removed, and said so. Each name carries its export's
    process id, so one still running is left alone."""
    for prefix in (f".{output.name}.partial-", f".{output.name}.compressed-",
                   f".{output.name}.old-"):
        for stale in output.parent.glob(f"{glob.escape(prefix)}*"):
            pid = stale.name[len(prefix):].split("-")[0]
            if stale.is_dir() and not _alive(pid):
                shutil.rmtree(stale, ignore_errors=True)
                log(f"removed {stale}, left by an export that was killed")


def _alive(pid: str) -> bool:
    """Whether process ``pid`` (a directory name's field) still runs; a field that is no
    number (names from before the pid was added) counts as dead."""
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return int(pid) != 0


def export(
    model: str,
    options: ExportOptions,
    output: Path | None = None,
    force: bool = False,
    parity_audio: Path | None = None,
    bundle: bool = False,
    log: Callable[[str], None] = lambda msg: print(msg, file=sys.stderr, flush=True),
) -> ExportResult:
    """Export ``model`` (any source ``sources.resolve`` accepts) to ``options.target``.

    Raises:
        ToolkitError subclasses, before any work where possible: unknown target, precision
        or device not supported here, output exists without ``force``, bad source, failed
        parity.

    ``bundle`` adds ``serve/`` (pinned requirements, the toolkit code, a Dockerfile and the
    serve command) so the artifact runs as a service elsewhere; see exporters.bundle.
    """
    started = time.perf_counter()
    target = registry.get(options.target)
    if options.word_timestamps and not target.aligns:
        able = ", ".join(name for name in registry.names() if registry.get(name).aligns)
        raise ExportError(f"--word-timestamps is not available for {target.name} exports yet "
                          f"(it is for {able})")
    precision = target.precision(options.precision, options.device)
    target.check(options, precision)
    calibration = _calibration(target, precision, options)
    for audio in (options.calibration, options.distill):
        if audio is not None:
            audio.check_decodes()  # files that are not audio fail before any work
    tuning = _int8_kernels(target, precision, options)
    output = Path(output or default_output(model, target.name, precision))
    _check_output(output, force)
    log(f"[1/4] resolving source {model}")
    source = sources.resolve(model)
    steps = options.compression_steps()
    if steps:
        from exporters.compress import check_steps

        check_steps(steps, source.hf_dir)
        for step in steps:
            if step.reshapes and (reason := target.refuses_reshape(step.reshapes)):
                raise OptionError(f"--compress {step}: {reason}")
    if reason := target.unsupported(source.hf_dir):
        raise OptionError(reason)
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"cannot create the output's folder {output.parent}: {exc}") from exc
    _remove_stale(output, log)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{output.name}.partial-{os.getpid()}-",
                                    dir=output.parent))
    except OSError as exc:  # a read-only folder, no space left for even a directory
        raise ExportError(f"cannot write in {output.parent}: {exc.strerror or exc}") from exc
    tmp.chmod(0o755)  # mkdtemp makes it private; the artifact is meant to be shared
    compressed_dir = tmp.with_name(tmp.name.replace(".partial-", ".compressed-", 1))
    compression: dict = {}
    try:
        original = source
        if steps:
            from exporters.compress import compress

            log(f"[2/4] compressing: {' then '.join(map(str, steps))}")
            with _step(f"compressing {source.spec}"):
                compression = compress(source.hf_dir, steps, compressed_dir,
                                       options.calibration, log)
            if options.distill is not None:
                from exporters.distill import distill

                log(f"[2/4] distilling: {options.distill_steps} steps on {options.distill.path}")
                with _step("distilling"):
                    compression["distill"] = distill(source.hf_dir, compressed_dir,
                                                     options.distill, options.distill_steps, log)
            source = replace(source, hf_dir=compressed_dir)
        log(f"[2/4] converting to {target.name} {precision}")
        with _step(f"converting {source.spec} to {target.name} {precision}"):
            target.convert(source, tmp, precision, options)
            _copy_shared_files(source.hf_dir, tmp)
        log("[3/4] checking parity with the PyTorch fp32 reference"
            + (" (the compressed model; then the uncompressed one, reported)" if steps else ""))
        with _step("the parity check"):
            parity = _parity(source, target, tmp, precision, options, parity_audio)
            if steps:
                compression["vs_uncompressed"] = _cost(original, target, tmp, precision,
                                                       options, parity_audio)
        if bundle:
            with _step("writing the serving bundle"):
                write_bundle(tmp, target, options.device)
        manifest = Manifest(
            format=target.format, precision=precision, device=options.device,
            family=FAMILY, model=_model_info(source.hf_dir), source=source.to_dict(),
            options={"target": target.name, "requested_precision": options.precision,
                     "batch_invariant": target.batch_invariant(precision),
                     **calibration, **tuning,
                     **({"compress": [str(s) for s in steps]} if steps else {})},
            files=describe_files(tmp), versions=_package_versions(target),
            parity=parity.to_dict(), created=datetime.now(timezone.utc).isoformat(),
            extra={"compression": compression} if compression else {},
        )
        log(f"[4/4] writing {output}")
        with _step(f"writing {output}"):  # a full disk or a read-only target: one line
            write_manifest(tmp, manifest)
            _replace(tmp, output, force)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(compressed_dir, ignore_errors=True)
    return ExportResult(output, manifest, time.perf_counter() - started)


def _calibration(target: Target, precision: str, options: ExportOptions) -> dict:
    """Check that calibration audio is given exactly when the precision needs it (before
    any work); its description for the manifest."""
    from exporters.compress import check_audio

    needed = target.calibrated(precision)
    if options.calibration is None and needed:
        raise OptionError(
            f"{target.name} {precision} quantises activations and needs calibration "
            f"audio: pass --calibration (a folder of audio files or a manifest TSV of "
            f"speech like the deployment's)")
    measuring = check_audio(options.compression_steps(), options.calibration)
    if options.calibration is None:
        return {}
    if not needed and not measuring:
        raise OptionError(f"--calibration applies to precisions that quantise activations "
                          f"and to --compress steps ending :activation; {target.name} "
                          f"{precision} without such a step uses none")
    files = options.calibration.files()
    return {"calibration": options.calibration.to_dict(len(files))}


def _int8_kernels(target: Target, precision: str, options: ExportOptions) -> dict:
    """The CPU kind the int8 weights are tuned for, for the manifest; an explicit choice
    for a precision it does not apply to is refused before any work."""
    if target.tunes_int8(precision):
        return {"int8_kernels": options.resolved_int8_kernels()}
    if options.int8_kernels != "auto":
        raise OptionError(f"--int8-kernels applies to onnx int8 and int4; {target.name} "
                          f"{precision} does not depend on it")
    return {}


def _cost(source, target: Target, model_dir: Path, precision: str, options: ExportOptions,
          parity_audio: Path | None) -> dict:
    """What compression cost against the uncompressed reference on the parity clip (the
    same measures as the parity check, reported, never failed on)."""
    from exporters.validate import ParityTolerance

    runtime_options = RuntimeOptions(options.device, target.parity_precision(precision),
                                     options.threads, trust_code=True)
    anything = ParityTolerance(encoder_rel_error=float("inf"), token_agreement=0.0)
    with load_reference(source.hf_dir, options.threads) as reference, \
            runtime_class(target.format)(model_dir, runtime_options) as candidate:
        report = check_parity(reference, candidate, model_dir, anything,
                              parity_audio or default_parity_audio())
    return {"encoder_rel_error": report.encoder_rel_error,
            "token_agreement": report.token_agreement,
            "reference_text": report.reference_text, "artifact_text": report.artifact_text}


def _parity(source, target: Target, model_dir: Path, precision: str,
            options: ExportOptions, parity_audio: Path | None):
    # trust_code: the artifact is the one this process has just written.
    runtime_options = RuntimeOptions(options.device, target.parity_precision(precision),
                                     options.threads, trust_code=True)
    with load_reference(source.hf_dir, options.threads) as reference, \
            runtime_class(target.format)(model_dir, runtime_options) as candidate:
        return check_parity(reference, candidate, model_dir, target.tolerance(precision),
                            parity_audio or default_parity_audio())
