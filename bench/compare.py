"""The runtime comparison: every target x precision this machine can run, exported from one
source, benchmarked against PyTorch fp32 and faster-whisper on one or more subsets, with
plots and a recommendation. ``bench/compare_cli.py`` is its command line
(``whisper-exporters compare``).

Rows this hardware cannot run (fp16 on a CPU, TensorRT without an NVIDIA GPU) stay in the
report with the reason, so the table says what exists and why it was not measured.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

from bench import runner
from bench.options import CompareOptions
from bench.runner import Row
from bench.systems import SystemSpec, faster_whisper_rows
from exporters.options import DISTILL_STEPS
from runtimes.audio import datasets
from runtimes.errors import ToolkitError
from runtimes.precision import canonical


@dataclass(frozen=True)
class Variant:
    """One target x precision, optionally through a compression recipe: runnable here, or
    skipped with the reason."""

    target: str
    precision: str
    skip_reason: str | None = None
    compress: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        recipe = f" + {self.method}" if self.compress else ""
        return f"{self.target} {canonical(self.precision)}{recipe}"  # ggml f16: "ggml fp16"

    @property
    def method(self) -> str:
        """The recipe as one cell ("prune-heads:0.25+prune-ffn:0.25"; "" uncompressed)."""
        return "+".join(self.compress)

    @property
    def slug(self) -> str:
        """A folder name."""
        recipe = "-" + self.method.replace(":", "").replace("+", "-") if self.compress else ""
        return f"{self.target}-{self.precision}{recipe}"


@dataclass
class Comparison:
    """Everything one comparison run produced."""

    rows: dict[str, list[Row]]  # subset -> rows (in report order)
    skipped: list[Variant]
    export_s: dict[str, float]
    recommendation: str | None = None
    max_wer_delta: float | None = None  # the recommendation's WER bound, also the peers'
    notes: list[str] = field(default_factory=list)
    paths: dict[str, Path] = field(default_factory=dict)  # row name -> model directory
    first_clips: list = field(default_factory=list)  # clips of the first subset
    start_error_clips: list[str] = field(default_factory=list)  # ids with known starts


def plan(device: str, targets: list[str] | None = None,
         calibrated: bool = False) -> list[Variant]:
    """Every precision a target offers on ``device`` here, then, as skipped rows with the
    target's own message, those the CLI shorthands reach that cannot run here (fp16 on a
    CPU, TensorRT without an NVIDIA GPU). A shorthand the target lacks makes no row.
    Precisions that need calibration audio are skipped unless ``calibrated``.
    """
    from exporters import registry
    from exporters.options import SHORTHANDS, ExportOptions

    names = registry.names()
    unknown = sorted(set(targets or []) - set(names))
    if unknown:
        raise ToolkitError(f"unknown target(s) {', '.join(unknown)}; available: {', '.join(names)}")
    variants: dict[str, Variant] = {}
    for name in targets or names:
        target = registry.get(name)
        for precision in target.offered(device):
            reason = None if calibrated or not target.calibrated(precision) else (
                "quantises activations: pass --calibration (audio to calibrate on)")
            variants[f"{name} {precision}"] = Variant(name, precision, reason)
        for shorthand in SHORTHANDS:
            try:
                precision = target.precision(shorthand, device)
            except ToolkitError:
                continue  # not a precision of this target
            try:
                target.check(ExportOptions(name, shorthand, device), precision)
                reason = None
            except ToolkitError as exc:
                reason = str(exc)
            variants.setdefault(f"{name} {precision}", Variant(name, precision, reason))
    return list(variants.values())


def with_recipes(variants: list[Variant], recipes: list[tuple[str, ...]],
                 compress_with: tuple[str, ...] = ()) -> list[Variant]:
    """``variants`` then, per recipe, the runnable variants named in ``compress_with`` (all
    when empty) exported through it; a target that cannot hold what a recipe does (pruned
    heads in CTranslate2, any reshaping in whisper.cpp) is a skipped row with its reason."""
    from exporters import registry
    from exporters.options import CompressionStep

    runnable = {v.name: v for v in variants if v.skip_reason is None}
    unknown = sorted(set(compress_with) - set(runnable))
    if unknown:
        raise ToolkitError(f"--compress-with {', '.join(unknown)}: not a row this comparison "
                           f"runs; one of: {', '.join(runnable)}")
    out = list(variants)
    for recipe in recipes:
        for name in compress_with or list(runnable):
            variant = runnable[name]
            target = registry.get(variant.target)
            reasons = [target.refuses_reshape(kind) for step in recipe if step != "distill"
                       and (kind := CompressionStep.parse(step).reshapes)]
            out.append(Variant(variant.target, variant.precision,
                               next((r for r in reasons if r), None), recipe))
    return out


def export_all(model: str, variants: list[Variant], out_dir: Path, device: str,
               threads: int, calibration=None, parity_audio: Path | None = None,
               words: bool = False, distill=None, distill_steps: int = DISTILL_STEPS,
               ) -> tuple[dict[str, Path], dict[str, float], list[Variant]]:
    """Export each runnable variant into ``out_dir`` (with ``words``, with what word
    timestamps need, where the target can add it; recipes ending in "distill" fine-tuned on
    ``distill``); a failed export becomes a skipped row."""
    from exporters import registry
    from exporters.api import export
    from exporters.options import CompressionStep, ExportOptions

    paths, seconds, failed = {}, {}, []
    runnable = [v for v in variants if v.skip_reason is None]
    for i, variant in enumerate(runnable, 1):
        print(f"[export {i}/{len(runnable)}] {variant.name}", file=sys.stderr, flush=True)
        path = out_dir / variant.slug
        steps = tuple(s for s in variant.compress if s != "distill")
        calibrated = (registry.get(variant.target).calibrated(variant.precision)
                      or any(CompressionStep.parse(step).needs_audio for step in steps))
        options = ExportOptions(variant.target, variant.precision, device, threads,
                                calibration if calibrated else None,
                                word_timestamps=words and registry.get(variant.target).aligns,
                                compress=steps,
                                distill=distill if "distill" in variant.compress else None,
                                distill_steps=distill_steps)
        try:
            result = export(model, options, path, force=True, parity_audio=parity_audio,
                            log=lambda _: None)
        except ToolkitError as exc:
            failed.append(Variant(variant.target, variant.precision, f"export failed: {exc}",
                                  variant.compress))
            continue
        paths[variant.name], seconds[variant.name] = path, result.seconds
    return paths, seconds, failed


def fits_budget(row: Row, max_wer_delta: float) -> bool:
    """Whether ``row`` ran and its WER is within ``max_wer_delta`` points of the baseline's."""
    return (not row.error and not math.isnan(row.delta_wer)
            and 100 * row.delta_wer <= max_wer_delta)


def recommend(rows: list[Row], artifacts: set[str], max_wer_delta: float) -> str:
    """The fastest artifact (batch-1 RTFx) whose WER is within ``max_wer_delta`` points of
    the baseline's, as one sentence."""
    fits = [r for r in rows if r.name in artifacts and fits_budget(r, max_wer_delta)]
    if not fits:
        return f"No artifact is within {max_wer_delta:g} WER points of the baseline on this machine."
    best = max(fits, key=lambda r: r.rtfx_b1)
    size, rtfx = best.best_batched
    batched = f", {rtfx:.1f} at batch {size}" if size > 1 else ""
    faster = [r.name for r in rows if r.peer and r.rtfx_b1 > best.rtfx_b1
              and fits_budget(r, max_wer_delta)]
    peers = f" Faster at batch 1 within the same WER: {', '.join(faster)}." if faster else ""
    return (f"Fastest artifact within {max_wer_delta:g} WER points of the baseline on this "
            f"machine: **{best.name}** ({best.precision}): RTFx {best.rtfx_b1:.1f} at batch 1"
            f"{batched}, WER {100 * best.wer:.2f}% ({100 * best.delta_wer:+.2f} pts), "
            f"{best.size_mb:.1f} MB.{peers}")


def run(options: CompareOptions, out_dir: Path) -> Comparison:
    """Plan, export, benchmark every subset, recommend; write nothing yet."""
    from exporters import sources

    calib = options.calibration
    if calib is not None:
        calib.files()  # a bad --calibration fails before any export
    variants = with_recipes(plan(options.device, list(options.targets) or None, calib is not None),
                            options.compression_recipes(), options.compress_with)
    runnable = ["pytorch fp32", *(v.name for v in variants if v.skip_reason is None)]
    if options.profile is not None and options.profile not in runnable:
        raise ToolkitError(f"--profile {options.profile!r} is not a row of this comparison; "
                           f"one of: {', '.join(runnable)}")
    source = sources.resolve(options.model)  # a bad --model fails before any export
    clip_sets = {s: datasets.load_clips(options.manifest, s, options.limit)
                 for s in options.subsets}
    paths, export_s, failed = export_all(options.model, variants, out_dir / "artifacts",
                                         options.device, options.threads, calib,
                                         options.parity_audio, options.word_agreement,
                                         options.distill, options.distill_steps)
    skipped = [v for v in variants if v.skip_reason] + failed
    specs = _specs(options, source, paths)
    methods = {v.name: v.method for v in variants if v.compress}
    peer_specs, peer_export_s, peer_notes = _peers(options, source, paths, out_dir)
    specs += peer_specs
    export_s.update(peer_export_s)
    rows, timed_clips = _measure(options, specs, clip_sets, export_s, methods)
    comparison = Comparison(rows, skipped, export_s, start_error_clips=timed_clips,
                            notes=peer_notes)
    if calib is not None and _overlaps(calib, options.manifest, options.subsets):
        comparison.notes.append("the calibration audio overlaps the evaluation subsets, so "
                                "calibrated rows' WER may be optimistic")
    comparison.paths = {spec.name: Path(spec.path) for spec in specs}
    if options.compress:  # what a compressed transfer or archive of each system weighs
        _add_packed_sizes(rows, specs)
    comparison.first_clips = next(iter(clip_sets.values()))
    comparison.max_wer_delta = options.max_wer_delta
    if options.max_wer_delta is not None:
        first = rows[options.subsets[0]]
        comparison.recommendation = recommend(first, set(paths), options.max_wer_delta)
    return comparison


def _measure(options: CompareOptions, specs: list[SystemSpec], clip_sets: dict,
             export_s: dict[str, float], methods: dict[str, str]) -> tuple[dict, list[str]]:
    """Every system on every subset (``bench.runner``): the rows per subset, and the ids
    of the clips whose segment starts were timed."""
    rows, timed_clips = {}, []
    for subset, clips in clip_sets.items():
        print(f"[bench] subset {subset}: {len(clips)} clips, {len(specs)} systems",
              file=sys.stderr, flush=True)
        truth = options.truth(clips)
        rows[subset] = runner.run(specs, clips, options.runtime(), options.decoding(),
                                  options.sizes, options.repeats, truth, options.word_agreement)
        timed_clips += [clips[i].id for i in truth]
        for row in rows[subset]:
            row.export_s = export_s.get(row.name, float("nan"))
            row.compress = methods.get(row.name, "")
    return rows, timed_clips


def _add_packed_sizes(rows: dict[str, list[Row]], specs: list[SystemSpec]) -> None:
    packed = {spec.name: packed_mb(Path(spec.path)) for spec in specs if not spec.peer}
    for row in (row for subset_rows in rows.values() for row in subset_rows):
        row.packed_mb = packed.get(row.name, float("nan"))


def packed_mb(path: Path) -> float:
    """zlib (level 1) size of every file below ``path`` (or of the file), in MB: the size
    unstructured pruning and clustering change while the size on disk stays (the same
    measure as the manifest's compression figures; level 1 keeps it seconds per artifact)."""
    import zlib

    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    size = 0
    for file in files:
        compressor = zlib.compressobj(1)
        with open(file, "rb") as f:
            while chunk := f.read(1 << 22):
                size += len(compressor.compress(chunk))
        size += len(compressor.flush())
    return size / 1e6


def _overlaps(calib, manifest: Path, subsets: tuple[str, ...]) -> bool:
    """Whether calibration clips may also be evaluation clips (same manifest, a shared or
    unrestricted subset)."""
    if calib.path.resolve() != Path(manifest).resolve():
        return False
    return not calib.subsets or bool(set(calib.subsets) & set(subsets))


def _peers(options: CompareOptions, source, paths: dict[str, Path],
           out_dir: Path) -> tuple[list[SystemSpec], dict[str, float], list[str]]:
    if not options.peers:
        return [], {}, []
    from bench import peers

    return peers.prepare(options.peers, source, paths, out_dir / "peers")


def _specs(options: CompareOptions, source, paths: dict[str, Path]) -> list[SystemSpec]:
    specs = [SystemSpec("pytorch fp32", "toolkit", str(source.hf_dir), "fp32", True)]
    specs += [SystemSpec(name, "toolkit", str(path)) for name, path in paths.items()]
    references, _ = faster_whisper_rows(source, paths, options.faster_whisper,
                                        options.faster_whisper_batched)
    return specs + references
