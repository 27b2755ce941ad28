"""``python -m runtimes.batch ARTIFACT INPUT... --out DIR``: transcribe files, folders, glob
patterns or manifest TSVs on Ray (a local one by default), writing Parquet and JSONL.
A rerun with the same artifact and settings skips the files already in DIR."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from runtimes.cli import (
    ADDRESS_HELP,
    BATCH_SIZE_HELP,
    PACK_HELP,
    add_decoding_arguments,
    add_runtime_arguments,
    decoding_options,
    fitted,
    runtime_options,
)
from runtimes.errors import ToolkitError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m runtimes.batch", description=__doc__)
    p.add_argument("artifact", type=Path, help="artifact, transformers or CTranslate2 directory")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="audio files, folders (searched recursively), glob patterns (quote "
                   "them: 'archive/**/*.flac') or manifest .tsv files")
    p.add_argument("-o", "--output", "--out", dest="out", metavar="DIR", type=Path, required=True,
                   help="output directory: results.jsonl, parquet/, failures.jsonl, job.json")
    p.add_argument("--subset", nargs="+", metavar="NAME",
                   help="only these subsets of the manifest(s), e.g. en longform")
    p.add_argument("--address", help=ADDRESS_HELP)
    p.add_argument("--actors", type=int, nargs="+", default=[1], metavar="N",
                   help="transcribing actors, each with its own model (default 1); two values "
                   "MIN MAX let Ray Data scale the pool")
    p.add_argument("--cpus-per-actor", type=float, default=1.0,
                   help="CPUs Ray reserves per actor (default 1); --threads defaults to it")
    p.add_argument("--gpus-per-actor", type=float, default=None,
                   help="GPUs Ray reserves per actor (default: 1 with --device cuda, i.e. one "
                   "model per GPU; 0.5 puts two on each)")
    p.add_argument("--files-per-call", type=int, default=16,
                   help="files per actor call; their windows share batches (default 16)")
    p.add_argument("--decoders", type=int,
                   help="files decoded and cut at once, each in a CPU task (default: one per "
                   "actor)")
    p.add_argument("--batch-size", type=int, default=8, help=BATCH_SIZE_HELP)
    p.add_argument("--pack", action="store_true", help=PACK_HELP)
    p.add_argument("--flush-every", type=int, default=256, help="rows per Parquet part")
    add_runtime_arguments(p)
    add_decoding_arguments(p, timestamps_default=True,
                           timestamps_help="(default: segments with their times)",
                           words_help="stored in each segment")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        from runtimes.batch.inputs import list_inputs
        from runtimes.batch.job import JobOptions, run_job
        from runtimes.cluster import default_gpus

        if len(args.actors) > 2:
            raise ToolkitError(f"--actors takes N or MIN MAX, got {args.actors}")
        actors = tuple(args.actors) if len(args.actors) == 2 else args.actors[0]
        gpus = default_gpus(args.device, args.gpus_per_actor)
        job = JobOptions(actors, args.cpus_per_actor, gpus, args.files_per_call,
                         args.decoders, args.batch_size, args.address, args.flush_every,
                         args.pack)
        options = runtime_options(args)
        decoding = decoding_options(args, timestamps=args.timestamps,
                                    word_timestamps=args.word_timestamps)
        decoding = fitted(args.artifact, decoding, args)
        paths = list_inputs(args.inputs, args.subset)
        _check_ray()
        summary = run_job(args.artifact, paths, args.out, options, decoding, job,
                          log=lambda line: print(line, file=sys.stderr, flush=True))
    except (ToolkitError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C: what is written stays, a rerun resumes (exit 130)
        print(f"interrupted: the files already in {args.out / 'results.jsonl'} are kept; "
              "run the same command again to transcribe the rest", file=sys.stderr)
        return 130
    print(summary.line(), file=sys.stderr)
    if summary.failures:
        print(f"failed files and their errors: {args.out / 'failures.jsonl'}", file=sys.stderr)
    return 1 if summary.failures else 0


def _check_ray() -> None:
    try:
        import pyarrow  # noqa: F401
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise ToolkitError(f"the batch job needs the 'ray' extra ({exc.name} is missing): "
                           "pip install -e '.[ray]'") from exc


if __name__ == "__main__":
    sys.exit(main())
