"""Encoder relative error of artifacts against a reference, window by window: what an
instruction set does to quantised arithmetic.

    python scripts/encoder_error.py REFERENCE ARTIFACT... [--clips N]

REFERENCE is a model directory or artifact (e.g. an ONNX fp32 export, or the transformers
checkpoint); each ARTIFACT's encoder output on JFK and the first N `en` clips is compared
with it (||a - r|| / ||r|| per window, one window per call). Run it twice to see what a CPU
without VNNI does to int8: natively, and under an emulator of such a CPU, e.g.
``qemu-x86_64 -cpu EPYC-Milan .venv/bin/python scripts/encoder_error.py ...`` (Debian's
qemu-user; the whole process then sees AVX2 and FMA only, and every library takes its
AVX2 code path). The emulator's timings mean nothing; its arithmetic is the point.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from bench.cli import CHECKOUT_MANIFEST  # noqa: E402
from runtimes.errors import ToolkitError  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("reference", type=Path)
    p.add_argument("artifacts", type=Path, nargs="+")
    p.add_argument("--manifest", type=Path, default=CHECKOUT_MANIFEST)
    p.add_argument("--clips", type=int, default=1, help="en clips after JFK (default: 1)")
    args = p.parse_args(argv)
    import runtimes
    from runtimes.audio.datasets import load_clips
    from runtimes.audio.features import batch_log_mel
    from runtimes.audio.files import load_audio
    from runtimes.cpu import cpu_info

    try:
        clips = [c for c in load_clips(args.manifest, "en") if "jfk" not in c.id][: args.clips]
        paths = [args.manifest.parent / "jfk" / "jfk.flac", *(c.path for c in clips)]
        features = batch_log_mel([load_audio(path) for path in paths])
        options = runtimes.RuntimeOptions(threads=1)
        reference = _encode(runtimes.load_runtime(args.reference, options), features)
        print(f"CPU: {cpu_info().label()}; windows: {', '.join(p.stem for p in paths)}")
        for artifact in args.artifacts:
            ours = _encode(runtimes.load_runtime(artifact, options), features)
            errors = [np.linalg.norm(o - r) / np.linalg.norm(r) for o, r in zip(ours, reference)]
            print(f"{artifact}: " + " ".join(f"{e:.3f}" for e in errors))
    except ToolkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _encode(runtime, features: np.ndarray) -> list[np.ndarray]:
    return [runtime.encode(features[i:i + 1])[0] for i in range(len(features))]


if __name__ == "__main__":
    sys.exit(main())
