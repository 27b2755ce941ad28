"""``python -m bench [ARTIFACT ...]``: every artifact vs the PyTorch baseline and faster-whisper."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from bench import report, runner
from bench.options import BenchOptions, run_info
from bench.systems import SystemSpec, faster_whisper_rows
from runtimes.audio import datasets
from runtimes.cli import (
    BEAM_HELP,
    DEVICE_HELP,
    LANGUAGE_HELP,
    THREADS_HELP,
    TRUST_HELP,
    add_long_form_arguments,
)
from runtimes.errors import OptionError, ToolkitError
from runtimes.precision import canonical

#: The speech data beside a checkout of this repository; an installed package has none, so
#: the command lines use it only when it is there, and say so.
CHECKOUT_MANIFEST = Path(__file__).resolve().parents[2] / "shared/data/speech/manifest.tsv"


def manifest_or_checkout(given: Path | None) -> Path:
    """``given``, else the checkout's speech manifest (the report's settings name the one
    used).

    Raises:
        ToolkitError: nothing given and no checkout data beside this code.
    """
    if given is not None:
        return given
    if not CHECKOUT_MANIFEST.is_file():
        raise ToolkitError("no --manifest given and no speech data beside this checkout "
                           f"({CHECKOUT_MANIFEST}): pass --manifest TSV or an audio folder")
    return CHECKOUT_MANIFEST


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("artifacts", nargs="*", type=Path, help="artifact directories to compare")
    p.add_argument("--model", default="bundled:tiny.en",
                   help="source of the PyTorch baseline (default: bundled:tiny.en); an "
                   "artifact exported from another source is refused")
    p.add_argument("--any-model", action="store_true",
                   help="measure artifacts exported from another source than --model anyway")
    p.add_argument("--pack-rows", dest="pack", action="store_true",
                   help="add a row per artifact that packs short clips into shared windows "
                   "(python -m runtimes --pack; the artifact must align words)")
    p.add_argument("--pytorch", nargs="*", default=["fp32"], metavar="PRECISION",
                   help="PyTorch rows; the first is the ΔWER baseline (default: fp32; also "
                   "fp16, bf16, int8 (dynamic); float32, float16, bfloat16 mean the same; "
                   "none for no PyTorch row)")
    add_measure_arguments(p)
    p.add_argument("--subset", default=None, help="manifest subset, e.g. en, longform, multi")
    p.add_argument("--max-new-tokens", type=int, default=224, help="per 30 s window (max 224)")
    add_transcript_arguments(p)
    p.add_argument("--trust-torchscript", action="store_true", help=TRUST_HELP)
    p.add_argument("-o", "--output", "--out", dest="out", metavar="DIR", type=Path, default=None,
                   help="report directory (default: results/bench-<time>)")
    return p


def systems(options: BenchOptions) -> tuple[list[SystemSpec], list[str]]:
    """The rows to run, in report order, and notes on rows that had to be left out."""
    from exporters import sources
    from runtimes.artifacts.manifest import read_manifest

    artifacts = []
    manifests = [read_manifest(path) for path in options.artifacts]
    source = sources.resolve(options.model)
    if not options.any_model:
        _check_same_source(options.artifacts, manifests, source)
    labels = [f"{m.format} {canonical(m.precision)}" for m in manifests]
    for path, label in zip(options.artifacts, labels):
        if labels.count(label) > 1:  # rows are keyed by name: two of a kind need their paths
            label = f"{label} ({path})"
        artifacts.append(SystemSpec(label, "toolkit", str(path)))
        if options.pack:
            artifacts.append(SystemSpec(f"{label} packed", "toolkit", str(path), pack=True))
    precisions = [p for p in options.pytorch if p != "none"]
    rows = [SystemSpec(f"pytorch {p}", "toolkit", str(source.hf_dir), p, baseline=(i == 0))
            for i, p in enumerate(precisions)]
    references, notes = faster_whisper_rows(
        source, {a.name: Path(a.path) for a in artifacts}, options.faster_whisper,
        options.faster_whisper_batched)
    if references and options.max_new_tokens != 224:
        notes.append("faster-whisper rows decode up to their own 224 new tokens")
    return rows + artifacts + references, notes


def _check_same_source(paths, manifests, source) -> None:
    """An artifact exported from another checkpoint than the baseline's ``--model`` is
    refused before any work: its WER delta would compare two different models (a
    whisper-small artifact against the default tiny.en baseline went unnoticed)."""
    for path, manifest in zip(paths, manifests):
        exported = manifest.source.get("sha256")
        if exported and source.sha256 and exported != source.sha256:
            spec = manifest.source.get("spec", "another checkpoint")
            raise OptionError(f"{path} was exported from {spec} (sha256 {exported[:12]}...), "
                              f"not from the baseline --model {source.spec} "
                              f"({source.sha256[:12]}...): pass --model {spec}, or --any-model "
                              "to compare different models")


def _peer_rows(options: BenchOptions, out: Path) -> tuple[list[SystemSpec], list[str],
                                                          dict[str, float]]:
    """The ``--peers`` rows, their export seconds, and notes on peers left out."""
    if not options.peers:
        return [], [], {}
    from bench import peers
    from exporters import sources

    artifacts = {str(p): Path(p) for p in options.artifacts}
    specs, seconds, notes = peers.prepare(options.peers, sources.resolve(options.model),
                                          artifacts, out / "peers")
    return specs, notes, seconds


def run(options: BenchOptions, command: str) -> tuple[str, list[runner.Row]]:
    """Measure, write the report into ``options.out``; return it as Markdown, and the rows."""
    clips = datasets.load_clips(options.manifest, options.subset, options.limit)
    specs, notes = systems(options)
    out = options.out or Path("results") / time.strftime("bench-%Y%m%d-%H%M%S")
    peer_specs, peer_notes, export_s = _peer_rows(options, out)
    specs, notes = specs + peer_specs, notes + peer_notes
    truth = options.truth(clips)
    rows = runner.run(specs, clips, options.runtime(), options.decoding(), options.sizes,
                      options.repeats, truth, options.word_agreement)
    for row in rows:
        row.export_s = export_s.get(row.name, float("nan"))
    dataset = {"source": str(options.manifest), "subset": options.subset, "clips": len(clips),
               "audio_s": rows[0].audio_s if rows and not rows[0].error else 0.0}
    info = run_info(options, dataset, runner.normalizers_used(clips), notes, command,
                    start_error_clips=[clips[i].id for i in truth],
                    word_agreement=options.word_agreement,
                    sequential_rows=[r.name for r in rows if r.sequential_batches])
    text = report.write(out, rows, info, options.sizes, clips)
    print(f"wrote {out}/report.md, report.csv, results.jsonl", file=sys.stderr)
    return text, rows


def add_measure_arguments(p: argparse.ArgumentParser) -> None:
    """What to measure on and how: the flags ``python -m bench`` and the comparison share,
    with one default and one help each."""
    p.add_argument("--faster-whisper", default="int8", metavar="COMPUTE_TYPE",
                   help="compute type of the faster-whisper reference row, 'none' to skip "
                   "(default: int8)")
    p.add_argument("--faster-whisper-batched", default="int8", metavar="COMPUTE_TYPE",
                   help="compute type of a row for faster-whisper's BatchedInferencePipeline "
                   "(VAD-packed windows; its long-form mode), 'none' to skip (default: int8)")
    p.add_argument("--manifest", type=Path, default=None,
                   help="speech manifest TSV, or a folder of audio files (speed only); "
                   "default: the checkout's ../shared/data/speech/manifest.tsv")
    p.add_argument("--limit", type=int, default=None, help="first N clips of each subset")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8],
                   help="batch sizes to time (default: 1 8; on a GPU try 1 8 32)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help=DEVICE_HELP)
    p.add_argument("--repeats", type=int, default=1,
                   help="rounds over all systems, alternating; the report merges them with "
                   "medians and gives the batch-1 spread (default: 1)")
    p.add_argument("--threads", type=int, default=0, help=THREADS_HELP)
    p.add_argument("--beam-size", type=int, default=1, help=BEAM_HELP)
    p.add_argument("--language", default=None, help=LANGUAGE_HELP)


def add_transcript_arguments(p: argparse.ArgumentParser) -> None:
    """The long-form decoding, start-error and word-agreement options both command lines
    take."""
    add_long_form_arguments(p)
    p.add_argument("--no-start-error", action="store_true",
                   help="skip the timestamped pass over the recordings whose utterance starts "
                   "are known (the longform subset) that fills the start-error columns")
    p.add_argument("--peers", nargs="+", default=[], metavar="PEER",
                   help="add other tools' rows, each used as its users use it on the same "
                   "checkpoint: whisper.cpp, optimum-onnx, optimum-openvino, openai-whisper, "
                   "transformers-pipeline, or all (a peer whose package is missing is left "
                   "out with the reason)")
    p.add_argument("--word-agreement", action="store_true",
                   help="decode every clip once more with word timestamps and report each "
                   "row's word-start gap to faster-whisper's word_timestamps=True (rows that "
                   "cannot align show —; the comparison exports with --word-timestamps)")


def measure_fields(args: argparse.Namespace) -> dict:
    """The ``MeasureOptions`` fields both command lines (this one and
    whisper-exporters compare) take, under the same option names."""
    return dict(
        manifest=manifest_or_checkout(args.manifest), limit=args.limit,
        batch_sizes=tuple(args.batch_sizes), repeats=args.repeats, threads=args.threads,
        beam_size=args.beam_size, language=args.language, device=args.device,
        faster_whisper=args.faster_whisper, faster_whisper_batched=args.faster_whisper_batched,
        long_form=args.long_form,
        condition_on_previous_text=not args.no_condition_on_previous_text,
        start_error=not args.no_start_error, word_agreement=args.word_agreement,
        peers=tuple(args.peers))


def options_from(args: argparse.Namespace) -> BenchOptions:
    """The typed options the command line names (OptionError for a bad value)."""
    return BenchOptions(
        **measure_fields(args), max_new_tokens=args.max_new_tokens,
        artifacts=tuple(args.artifacts), model=args.model, pytorch=tuple(args.pytorch),
        subset=args.subset, out=args.out, trust_code=args.trust_torchscript,
        any_model=args.any_model, pack=args.pack)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        command = "python -m bench " + shlex.join(sys.argv[1:] if argv is None else argv)
        text, rows = run(options_from(args), command)
        print(text)
    except ToolkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    failed = [row for row in rows if row.error]
    for row in failed:  # the report has them too; the exit status must say so
        print(f"error: row {row.name!r} failed: {row.error}", file=sys.stderr)
    return 1 if failed else 0
