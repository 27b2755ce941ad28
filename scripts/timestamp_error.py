"""Segment-timestamp error of artifacts (and faster-whisper) on the `longform` recordings.

    python scripts/timestamp_error.py ARTIFACT... [--faster-whisper int8] [--threads 2]

Each artifact transcribes the two `longform` recordings with ``DecodingOptions(timestamps=
True)`` (VAD windows decoded in parallel, batch 8); each utterance's true start is known
(``bench.timing``), and the table gives, per recording, the number of segments and the
median / 90th percentile / maximum distance in ms from each true start to the nearest
segment start. ``--faster-whisper TYPE`` adds faster-whisper's own sequential
``transcribe`` (openai-style seeking, no VAD) of the bundled tiny.en, for comparison.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runtimes.errors import ToolkitError  # noqa: E402


def longform_clips(speech: Path):
    from runtimes.audio.datasets import from_manifest

    return from_manifest(speech / "manifest.tsv", "longform")


def artifact_starts(artifact: Path, paths: list[Path], threads: int,
                    trust: bool = False) -> tuple[str, list]:
    import runtimes

    with runtimes.load(artifact, runtimes.RuntimeOptions(threads=threads, trust_code=trust),
                       runtimes.DecodingOptions(timestamps=True)) as model:
        name = f"{model.runtime.format} {model.runtime.precision}"
        results = model.transcribe([str(p) for p in paths], batch_size=8)
    return name, [[s.start for s in r.segments] for r in results]


def faster_whisper_starts(compute_type: str, paths: list[Path], threads: int) -> tuple[str, list]:
    from faster_whisper import WhisperModel

    from exporters.sources import bundled_ct2_dir

    model = WhisperModel(str(bundled_ct2_dir("tiny.en")), compute_type=compute_type,
                         cpu_threads=threads)
    starts = []
    for path in paths:
        segments, _ = model.transcribe(str(path), beam_size=1, language="en", temperature=0.0)
        starts.append([s.start for s in segments])
    return f"faster-whisper {compute_type} (sequential)", starts


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("artifacts", type=Path, nargs="*")
    p.add_argument("--faster-whisper", metavar="TYPE", help="add faster-whisper (e.g. int8)")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--trust-torchscript", action="store_true",
                   help="load TorchScript artifacts (they are programs: only yours)")
    p.add_argument("--speech", type=Path, default=ROOT.parent / "shared/data/speech")
    args = p.parse_args(argv)
    from bench.timing import start_errors, summary_ms, true_starts

    try:
        clips = longform_clips(args.speech)
        paths = [clip.path for clip in clips]
        truth = [true_starts(clip.id, args.speech) for clip in clips]
        jobs = [(lambda a=a: artifact_starts(a, paths, args.threads, args.trust_torchscript))
                for a in args.artifacts]
        if args.faster_whisper:
            jobs.append(lambda: faster_whisper_starts(args.faster_whisper, paths, args.threads))
        if not jobs:
            raise ToolkitError("nothing to measure: give ARTIFACT... or --faster-whisper")
        print("| system | recording | utterances | segments | median ms | p90 ms | max ms | s |")
        print("|---|---|---:|---:|---:|---:|---:|---:|")
        for job in jobs:
            started = time.perf_counter()
            name, starts = job()
            seconds = time.perf_counter() - started
            for clip, true, predicted in zip(clips, truth, starts):
                errors = start_errors(true, predicted)
                median, p90 = summary_ms(errors)
                print(f"| {name} | {clip.id} | {len(true)} | {len(predicted)} | {median:.0f} "
                      f"| {p90:.0f} | {errors.max() * 1000:.0f} | {seconds:.1f} |", flush=True)
    except ToolkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
