"""Compare every runtime and precision on this machine: export, benchmark, report, plot.

    whisper-exporters compare --model bundled:tiny.en --max-wer-delta 0.5
    python -m bench.compare_cli ...          (the same; scripts/compare_runtimes.py too)

Exports every target x precision this machine can run (rows it cannot run are listed with
the reason), benchmarks each artifact against PyTorch fp32 and faster-whisper, each in its
own process (``python -m bench``'s runner), on every ``--subset`` subset, and writes
``-o``: report.md (one table per subset, the recommendation, the settings), report.csv,
results.jsonl, and PNG plots (RTFx against WER with the Pareto front, throughput against
batch size). ``--profile SYSTEM`` adds the top operators by time of one artifact.
``--compress RECIPE ...`` adds rows per recipe x row (``--compress-with``), with the method
and the artifact's zlib size beside its size on disk.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from bench import compare, compare_files
from bench.cli import add_measure_arguments, add_transcript_arguments, measure_fields
from bench.options import CompareOptions, run_info
from exporters.cli import (
    add_calibration_arguments,
    calibration_set,
    distill_audio,
    parity_clip,
)
from exporters.options import DISTILL_STEPS
from runtimes.errors import ToolkitError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="whisper-exporters compare", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="bundled:tiny.en", help="source checkpoint (any --model)")
    p.add_argument("--targets", nargs="+", help="only these targets (default: all)")
    p.add_argument("--subset", "--subsets", dest="subsets", metavar="NAME", nargs="+",
                   default=["en", "longform"],
                   help="manifest subsets, each its own table (default: en longform)")
    add_measure_arguments(p)
    p.add_argument("--max-wer-delta", type=float,
                   help="name the fastest artifact within this many WER points of PyTorch fp32")
    p.add_argument("--profile", metavar="SYSTEM",
                   help="print the top operators of this row, e.g. 'onnx int8' (after the run)")
    p.add_argument("--compress", nargs="+", default=[], metavar="RECIPE",
                   help="compression recipes, each adding rows: METHOD[:ARGS] steps joined by "
                   "'+' (python -m exporters --compress), e.g. prune-unstructured:0.5 "
                   "prune-heads:0.25+prune-ffn:0.25; ending in +distill, fine-tuned on --distill")
    p.add_argument("--distill", type=Path, metavar="PATH",
                   help="audio for the +distill recipes (a folder or a manifest TSV)")
    p.add_argument("--distill-subset", nargs="+", default=[], metavar="SUBSET",
                   help="only these subsets of the --distill manifest")
    p.add_argument("--distill-steps", type=int, default=DISTILL_STEPS, metavar="N",
                   help=f"fine-tuning steps of 8 windows (default: {DISTILL_STEPS})")
    p.add_argument("--compress-with", nargs="+", default=[], metavar="ROW",
                   help="the rows each recipe is exported to, e.g. 'openvino int8' (default: "
                   "every row this comparison runs)")
    p.add_argument("-o", "--output", "--out", dest="out", metavar="DIR", type=Path, default=None,
                   help="report directory (default: results/compare-<time>)")
    add_transcript_arguments(p)
    add_calibration_arguments(p)
    return p


def options_from(args: argparse.Namespace) -> CompareOptions:
    """The typed options the command line names (OptionError for a bad value)."""
    return CompareOptions(
        **measure_fields(args),
        model=args.model, targets=tuple(args.targets or ()), subsets=tuple(args.subsets),
        max_wer_delta=args.max_wer_delta, profile=args.profile,
        calibration=calibration_set(args), parity_audio=parity_clip(None),
        compress=tuple(args.compress), compress_with=tuple(args.compress_with),
        distill=distill_audio(args), distill_steps=args.distill_steps)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    started = time.perf_counter()
    out = args.out or Path("results") / time.strftime("compare-%Y%m%d-%H%M%S")
    command = "whisper-exporters compare " + shlex.join(
        sys.argv[1:] if argv is None else argv)
    try:
        options = options_from(args)
        comparison = compare.run(options, out)
        dataset = {"source": str(options.manifest), "subset": ", ".join(options.subsets),
                   "clips": sum(rows[0].clips for rows in comparison.rows.values()),
                   "audio_s": sum(rows[0].audio_s for rows in comparison.rows.values())}
        info = run_info(options, dataset, ["whisper-english+spelling (en)",
                                           "whisper-basic (other languages)"],
                        comparison.notes, command, model=options.model,
                        start_error_clips=comparison.start_error_clips,
                        word_agreement=options.word_agreement,
                        sequential_rows=sorted({r.name for rows in comparison.rows.values()
                                                for r in rows if r.sequential_batches}))
        text = compare_files.write(comparison, out, info, options.sizes)
        if options.profile:
            text += compare_files.profile_section(options, out, comparison)
    except ToolkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(text)
    print(f"wrote {out}/report.md, report.csv, results.jsonl and plots in "
          f"{time.perf_counter() - started:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
