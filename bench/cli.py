"""``python -m bench [ARTIFACT ...]``: every artifact vs the PyTorch baseline and faster-whisper."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from bench import report, runner
from bench.systems import SystemSpec, faster_whisper_rows
from runtimes import datasets
from runtimes.base import DecodingOptions, RuntimeOptions
from runtimes.errors import ToolkitError

DEFAULT_MANIFEST = Path(__file__).resolve().parents[2] / "shared/data/speech/manifest.tsv"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("artifacts", nargs="*", type=Path, help="artifact directories to compare")
    p.add_argument("--model", default="bundled:tiny.en",
                   help="source of the PyTorch baseline (default: bundled:tiny.en)")
    p.add_argument("--pytorch", nargs="*", default=["float32"], metavar="PRECISION",
                   help="PyTorch rows; the first is the ΔWER baseline (default: float32; "
                   "also float16, bfloat16, int8; none for no PyTorch row)")
    p.add_argument("--faster-whisper", default="int8", metavar="COMPUTE_TYPE",
                   help="compute type of the faster-whisper reference row, 'none' to skip "
                   "(default: int8)")
    p.add_argument("--faster-whisper-batched", default="none", metavar="COMPUTE_TYPE",
                   help="compute type of a row for faster-whisper's BatchedInferencePipeline "
                   "(VAD-packed windows; its long-form mode), 'none' to skip (default: none)")
    p.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST,
                   help="speech manifest TSV, or a folder of audio files (speed only)")
    p.add_argument("--subset", default=None, help="manifest subset, e.g. en, longform, multi")
    p.add_argument("--limit", type=int, default=None, help="first N clips only")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8],
                   help="batch sizes to time besides 1 (default: 8; on a GPU try 1 8 32)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                   help="where every system runs (cuda adds VRAM columns; default: cpu)")
    p.add_argument("--repeats", type=int, default=1,
                   help="rounds over all systems, alternating; the report merges them with "
                   "medians (default: 1)")
    p.add_argument("--threads", type=int, default=0, help="threads per runtime (0 = all cores)")
    p.add_argument("--beam-size", type=int, default=1)
    p.add_argument("--language", default=None, help="force a language (multilingual models)")
    p.add_argument("--max-new-tokens", type=int, default=224, help="per 30 s window (max 224)")
    p.add_argument("--out", type=Path, default=None,
                   help="report directory (default: results/bench-<time>)")
    return p


def systems(args: argparse.Namespace) -> tuple[list[SystemSpec], list[str]]:
    """The rows to run, in report order, and notes on rows that had to be left out."""
    from exporters import sources
    from runtimes.artifact import read_manifest

    notes = []
    artifacts = []
    labels = [f"{m.format} {m.precision}" for m in map(read_manifest, args.artifacts)]
    for path, label in zip(args.artifacts, labels):
        if labels.count(label) > 1:  # rows are keyed by name: two of a kind need their paths
            label = f"{label} ({path})"
        artifacts.append(SystemSpec(label, "toolkit", str(path)))
    source = sources.resolve(args.model)
    precisions = [p for p in args.pytorch if p != "none"]
    rows = [SystemSpec(f"pytorch {p}", "toolkit", str(source.hf_dir), p, baseline=(i == 0))
            for i, p in enumerate(precisions)]
    rows += artifacts
    references, skipped = faster_whisper_rows(
        source, {a.name: Path(a.path) for a in artifacts}, args.faster_whisper,
        args.faster_whisper_batched)
    if references and args.max_new_tokens != 224:
        notes.append("faster-whisper rows decode up to their own 224 new tokens")
    return rows + references, notes + skipped


def validate(args: argparse.Namespace) -> None:
    """Checks shared with scripts/compare_runtimes.py (same option names)."""
    if any(b < 1 for b in args.batch_sizes):
        raise ToolkitError(f"--batch-sizes must be >= 1, got {args.batch_sizes}")
    if args.limit is not None and args.limit < 1:
        raise ToolkitError(f"--limit must be >= 1, got {args.limit}")
    if args.repeats < 1:
        raise ToolkitError(f"--repeats must be >= 1, got {args.repeats}")
    if args.threads < 0:
        raise ToolkitError(f"--threads must be >= 0, got {args.threads}")


def run(args: argparse.Namespace) -> str:
    validate(args)
    decoding = DecodingOptions(beam_size=args.beam_size, language=args.language,
                               max_new_tokens=args.max_new_tokens)
    runtime = RuntimeOptions(device=args.device, threads=args.threads)
    clips = datasets.load_clips(args.manifest, args.subset, args.limit)
    specs, notes = systems(args)
    batch_sizes = sorted(set([1, *args.batch_sizes]))
    rows = runner.run(specs, clips, runtime, decoding, batch_sizes, args.repeats)
    run_info = {
        "decoding": {**decoding.__dict__}, "environment": runner.environment(args.threads, args.device),
        "dataset": {"source": str(args.manifest), "subset": args.subset, "clips": len(clips),
                    "audio_s": rows[0].audio_s if rows and not rows[0].error else 0.0},
        "normalizers": runner.normalizers_used(clips), "notes": notes, "repeats": args.repeats,
        "command": "python -m bench " + shlex.join(sys.argv[1:]),
    }
    out = args.out or Path("results") / time.strftime("bench-%Y%m%d-%H%M%S")
    text = report.write(out, rows, run_info, batch_sizes)
    print(f"wrote {out}/report.md, report.csv, results.jsonl", file=sys.stderr)
    return text


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        print(run(args))
    except ToolkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
