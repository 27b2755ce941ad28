"""Where batch-1 time goes: log-mel, encoder and decoder steps, timed inside ``transcribe``.

    python scripts/stage_times.py ARTIFACT... [--subset en] [--limit 16] [--threads 2]

Each clip is transcribed alone (batch 1, as the comparison's batch-1 pass does). The
runtime's ``cross_cache`` (the encoder, which always runs on a 30 s window) and
``decode_step`` calls and the pipeline's log-mel are timed as they run; what remains of
the total is the decoding loop itself and detokenising. It answers what a faster decoder
step or encoder could buy at most: the comparison gives speeds, this gives their parts.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.cli import CHECKOUT_MANIFEST  # noqa: E402
from runtimes.errors import ToolkitError  # noqa: E402

STAGES = ("log_mel", "cross_cache", "decode_step")


class _Timer:
    """Seconds and calls per stage, collected by wrapping the stage's callable."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: Counter[str] = Counter()

    def wrap(self, name: str, fn):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - start
                self.calls[name] += 1
        return timed


def stage_times(artifact: Path, audio: list, threads: int) -> tuple[float, _Timer]:
    """Seconds per clip of the whole ``transcribe`` call, and the timer of its stages."""
    import runtimes
    import runtimes.transcript.pipeline as pipeline

    timer = _Timer()
    model = runtimes.load(artifact, runtimes.RuntimeOptions(threads=threads))
    runtime = model.runtime
    original = pipeline.batch_log_mel
    try:
        for name in STAGES[1:]:
            if not hasattr(runtime, name):
                raise ToolkitError(
                    f"{artifact}: a {runtime.format} runtime has no {name} stage to time "
                    f"(graph runtimes only: onnx, openvino, torchscript, tensorrt)")
            setattr(runtime, name, timer.wrap(name, getattr(runtime, name)))
        pipeline.batch_log_mel = timer.wrap("log_mel", original)
        model.transcribe(audio[:1])  # warm-up, not counted
        timer.seconds.clear()
        timer.calls.clear()
        start = time.perf_counter()
        for clip in audio:
            model.transcribe([clip])
        return (time.perf_counter() - start) / len(audio), timer
    finally:
        pipeline.batch_log_mel = original
        model.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("artifacts", type=Path, nargs="+")
    p.add_argument("--manifest", type=Path, default=CHECKOUT_MANIFEST)
    p.add_argument("--subset", default="en")
    p.add_argument("--limit", type=int, default=16, help="first N clips (default: 16)")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    from runtimes.audio.datasets import load_clips
    from runtimes.audio.files import load_audio
    from runtimes.cpu import cpu_info

    try:
        if args.limit < 1:
            raise ToolkitError(f"--limit must be >= 1, got {args.limit}")
        clips = load_clips(args.manifest, args.subset, args.limit)
        audio = [load_audio(c.path) for c in clips]
        print(f"CPU: {cpu_info().label()}; {len(audio)} `{args.subset}` clips, batch 1, "
              f"{args.threads} threads; ms per clip (calls per clip, ms per call)")
        print("| artifact | total | " + " | ".join(STAGES) + " | rest |")
        print("|---|---:|" + "---:|" * (len(STAGES) + 1))
        for artifact in args.artifacts:
            total, timer = stage_times(artifact, audio, args.threads)
            cells = []
            for name in STAGES:
                per_clip = timer.seconds[name] / len(audio) * 1000
                calls = timer.calls[name] / len(audio)
                per_call = timer.seconds[name] / max(timer.calls[name], 1) * 1000
                cells.append(f"{per_clip:.1f} ({calls:.1f}, {per_call:.2f})")
            rest = total * 1000 - sum(timer.seconds[n] for n in STAGES) / len(audio) * 1000
            print(f"| {artifact} | {total * 1000:.1f} | " + " | ".join(cells) + f" | {rest:.1f} |")
    except ToolkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
