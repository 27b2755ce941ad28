"""``export()``: the steps every target shares, around one target-specific ``convert``.

resolve source -> check options -> empty temp dir beside the output -> convert -> copy
tokenizer and feature-extractor config -> parity check against the PyTorch reference ->
manifest with checksums -> atomic move into place. Any failure removes the temp dir, so
nothing half-written is ever left at the output path.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
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
from exporters.errors import ExportError
from exporters.options import ExportOptions
from exporters.output import check_output, make_temp, remove_stale, replace_output
from exporters.recorded import recorded_options
from exporters.targets.base import Target
from exporters.validate import check_parity, default_parity_audio, load_reference
from runtimes.artifacts.checkpoint import layer_shapes
from runtimes.artifacts.graph_spec import is_multilingual
from runtimes.artifacts.manifest import FAMILY, Manifest, describe_files, write_manifest
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


@dataclass(frozen=True)
class _Plan:
    """What an export will do, settled and checked before any work."""

    target: Target
    precision: str
    options: ExportOptions
    output: Path
    source: sources.Source
    steps: tuple  # the --compress steps, in order
    recorded: dict  # manifest options from the checks: calibration, int8 tuning


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
    plan = _plan(model, options, output, force, log)
    remove_stale(plan.output, log)
    tmp = make_temp(plan.output)
    compressed_dir = tmp.with_name(tmp.name.replace(".partial-", ".compressed-", 1))
    try:
        manifest = _build(plan, tmp, compressed_dir, parity_audio, bundle, log)
        log(f"[4/4] writing {plan.output}")
        with _step(f"writing {plan.output}"):  # a full disk or a read-only target: one line
            write_manifest(tmp, manifest)
            replace_output(tmp, plan.output, force)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(compressed_dir, ignore_errors=True)
    return ExportResult(plan.output, manifest, time.perf_counter() - started)


def _plan(model: str, options: ExportOptions, output: Path | None, force: bool,
          log: Callable[[str], None]) -> _Plan:
    """Every check that can fail before work starts (a wrong option should not cost a
    conversion first): target and precision, calibration and distillation audio, the
    output, the source and what the compression steps need of it."""
    target = registry.get(options.target)
    if options.word_timestamps and not target.aligns:
        able = ", ".join(name for name in registry.names() if registry.get(name).aligns)
        raise ExportError(f"--word-timestamps is not available for {target.name} exports yet "
                          f"(it is for {able})")
    precision = target.precision(options.precision, options.device)
    target.check(options, precision)
    recorded = recorded_options(target, precision, options)
    for audio in (options.calibration, options.distill):
        if audio is not None:
            audio.check_decodes()  # files that are not audio fail before any work
    output = Path(output or default_output(model, target.name, precision))
    check_output(output, force)
    log(f"[1/4] resolving source {model}")
    source = sources.resolve(model)
    steps = tuple(options.compression_steps())
    if steps:
        from exporters.compress import check_steps

        check_steps(list(steps), source.hf_dir)
        for step in steps:
            if step.reshapes and (reason := target.refuses_reshape(step.reshapes)):
                raise OptionError(f"--compress {step}: {reason}")
    if reason := target.unsupported(source.hf_dir):
        raise OptionError(reason)
    return _Plan(target, precision, options, output, source, steps, recorded)


def _build(plan: _Plan, tmp: Path, compressed_dir: Path, parity_audio: Path | None,
           bundle: bool, log: Callable[[str], None]) -> Manifest:
    """Compress (if asked), convert, check parity and bundle into ``tmp``; the manifest
    that describes the result."""
    target, precision, options = plan.target, plan.precision, plan.options
    source, compression = plan.source, {}
    if plan.steps:
        compression = _compress(plan, compressed_dir, log)
        source = replace(source, hf_dir=compressed_dir)
    log(f"[2/4] converting to {target.name} {precision}")
    with _step(f"converting {source.spec} to {target.name} {precision}"):
        target.convert(source, tmp, precision, options)
        _copy_shared_files(source.hf_dir, tmp)
    log("[3/4] checking parity with the PyTorch fp32 reference"
        + (" (the compressed model; then the uncompressed one, reported)" if plan.steps else ""))
    with _step("the parity check"):
        parity = _parity(source, target, tmp, precision, options, parity_audio)
        if plan.steps:
            compression["vs_uncompressed"] = _cost(plan.source, target, tmp, precision,
                                                   options, parity_audio)
    if bundle:
        with _step("writing the serving bundle"):
            write_bundle(tmp, target, options.device)
    return Manifest(
        format=target.format, precision=precision, device=options.device,
        family=FAMILY, model=_model_info(source.hf_dir), source=source.to_dict(),
        options={"target": target.name, "requested_precision": options.precision,
                 "batch_invariant": target.batch_invariant(precision, options), **plan.recorded,
                 **({"compress": [str(s) for s in plan.steps]} if plan.steps else {})},
        files=describe_files(tmp), versions=_package_versions(target),
        parity=parity.to_dict(), created=datetime.now(timezone.utc).isoformat(),
        extra={"compression": compression} if compression else {},
    )


def _compress(plan: _Plan, compressed_dir: Path, log: Callable[[str], None]) -> dict:
    """The compression steps, then distillation if asked, into ``compressed_dir``; what
    they did, for the manifest."""
    from exporters.compress import compress

    options, hf_dir = plan.options, plan.source.hf_dir
    log(f"[2/4] compressing: {' then '.join(map(str, plan.steps))}")
    with _step(f"compressing {plan.source.spec}"):
        compression = compress(hf_dir, list(plan.steps), compressed_dir, options.calibration,
                               log)
    if options.distill is not None:
        from exporters.distill import distill

        log(f"[2/4] distilling: {options.distill_steps} steps on {options.distill.path}")
        with _step("distilling"):
            compression["distill"] = distill(hf_dir, compressed_dir, options.distill,
                                             options.distill_steps, log)
    return compression


def _cost(source, target: Target, model_dir: Path, precision: str, options: ExportOptions,
          parity_audio: Path | None) -> dict:
    """What compression cost against the uncompressed reference on the parity clip (the
    same measures as the parity check, reported, never failed on)."""
    from exporters.validate import ParityTolerance

    anything = ParityTolerance(encoder_rel_error=float("inf"), token_agreement=0.0)
    report = _parity(source, target, model_dir, precision, options, parity_audio, anything)
    return {"encoder_rel_error": report.encoder_rel_error,
            "token_agreement": report.token_agreement,
            "reference_text": report.reference_text, "artifact_text": report.artifact_text}


def _parity(source, target: Target, model_dir: Path, precision: str, options: ExportOptions,
            parity_audio: Path | None, tolerance=None):
    """The parity check of the artifact just written (trust_code: this process wrote it),
    with attention in fp32 (whisper.cpp's flash attention off): it judges the file, not
    the runtime's attention kernel, which a user may switch."""
    runtime_options = RuntimeOptions(options.device, target.parity_precision(precision),
                                     options.threads, trust_code=True, flash_attention=False)
    with load_reference(source.hf_dir, options.threads) as reference, \
            runtime_class(target.format)(model_dir, runtime_options) as candidate:
        return check_parity(reference, candidate, model_dir,
                            tolerance or target.tolerance(precision),
                            parity_audio or default_parity_audio())
