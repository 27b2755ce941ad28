"""Word-timestamp agreement of artifacts with faster-whisper's on the `en` clips.

    python scripts/word_agreement.py ARTIFACT... [--faster-whisper int8] [--threads 2]

faster-whisper's own ``word_timestamps=True`` (greedy, the bundled tiny.en at the given
compute type) is the reference; each artifact transcribes the same clips with
``DecodingOptions(word_timestamps=True)`` (batch 8). Words are matched in order by their
text (``bench.timing.word_start_gaps``); the table gives the words found, the share
matched, and the median / 90th percentile of |start difference| in ms.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runtimes.errors import ToolkitError  # noqa: E402


def reference(compute_type: str, paths: list[Path], threads: int) -> list[list[tuple[str, float]]]:
    from faster_whisper import WhisperModel

    from exporters.sources import bundled_ct2_dir

    model = WhisperModel(str(bundled_ct2_dir("tiny.en")), compute_type=compute_type,
                         cpu_threads=threads)
    return [[(w.word, w.start) for s in model.transcribe(str(p), beam_size=1,
                                                          word_timestamps=True)[0]
             for w in s.words] for p in paths]


def words(artifact: Path, paths: list[Path], threads: int,
          trust: bool = False) -> tuple[str, list]:
    import runtimes

    with runtimes.load(artifact, runtimes.RuntimeOptions(threads=threads, trust_code=trust),
                       runtimes.DecodingOptions(word_timestamps=True)) as model:
        name = f"{model.runtime.format} {model.runtime.precision}"
        results = model.transcribe([str(p) for p in paths], batch_size=8)
    return name, [[(w.word, w.start) for s in r.segments for w in s.words] for r in results]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("artifacts", type=Path, nargs="+")
    p.add_argument("--faster-whisper", metavar="TYPE", default="int8",
                   help="the reference's compute type (default int8)")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--trust-torchscript", action="store_true",
                   help="load TorchScript artifacts (they are programs: only yours)")
    p.add_argument("--speech", type=Path, default=ROOT.parent / "shared/data/speech")
    args = p.parse_args(argv)
    from bench.timing import word_start_gaps
    from runtimes.audio.datasets import from_manifest

    try:
        paths = [clip.path for clip in from_manifest(args.speech / "manifest.tsv", "en")]
        theirs = reference(args.faster_whisper, paths, args.threads)
        print(f"reference: faster-whisper {args.faster_whisper} word_timestamps, {len(paths)} "
              f"clips, {sum(map(len, theirs))} words")
        print("| system | words | matched | median ms | p90 ms |")
        print("|---|---:|---:|---:|---:|")
        for artifact in args.artifacts:
            name, ours = words(artifact, paths, args.threads, args.trust_torchscript)
            gaps = np.asarray([g for a, b in zip(ours, theirs) for g in word_start_gaps(a, b)])
            total = sum(map(len, ours))
            print(f"| {name} | {total} | {len(gaps) / max(total, 1):.1%} | "
                  f"{np.median(gaps) * 1000:.0f} | {np.percentile(gaps, 90) * 1000:.0f} |",
                  flush=True)
    except ToolkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
