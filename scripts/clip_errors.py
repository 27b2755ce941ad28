"""Per-clip word errors of models on the clips the suite's graph checks use, as JSON.

The bounds of ``tests/slow/test_real_graphs.py`` compare quantised artifacts with PyTorch
fp32 clip by clip; int8 and bf16 arithmetic differ between CPU kinds, so those bounds are
set from this script's output on each kind. Run it natively on one kind and under QEMU's
user-mode emulator for the other (arithmetic only; the timings mean nothing there)::

    python scripts/clip_errors.py --out results/clip-errors-native.json MODEL...
    qemu-x86_64 -cpu EPYC-Milan .venv/bin/python scripts/clip_errors.py \\
        --out results/clip-errors-avx2.json MODEL...

MODEL: an artifact directory, or a transformers directory (PyTorch fp32). The output maps
each model to its clips' word errors and prints the comparison with the first model
(the suite's bounds are stated from these tables).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))



def half_en(manifest: Path) -> list[dict[str, str]]:
    """Every other clip of the en subset (28 clips, 445 words): the suite's graph checks'."""
    import csv

    with open(manifest, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [r for r in rows if r["subset"] == "en"][::2]


def errors_of(model_dir: Path, rows: list[dict[str, str]], speech: Path,
              threads: int) -> list[int]:
    """The model's word errors on each clip (batch 8, as the suite transcribes them)."""
    import runtimes
    from bench.metrics import clip_word_errors
    from runtimes.audio.files import load_audio

    audio = [load_audio(speech / r["path"]) for r in rows]
    options = runtimes.RuntimeOptions(threads=threads, trust_code=True)
    with runtimes.load(model_dir, options) as model:
        texts = [t.text for t in model.transcribe(audio, 8)]
    return clip_word_errors([r["reference"] for r in rows], texts,
                            [r["language"] for r in rows])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", type=Path, help="the first one is the reference")
    p.add_argument("--out", type=Path, required=True, help="JSON file to write")
    p.add_argument("--speech", type=Path, default=ROOT.parent / "shared/data/speech")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    from runtimes.cpu import cpu_info

    rows = half_en(args.speech / "manifest.tsv")
    found: dict[str, list[int]] = {}
    for model_dir in args.models:
        found[str(model_dir)] = errors_of(model_dir, rows, args.speech, args.threads)
        print(f"{model_dir}: {sum(found[str(model_dir)])} word errors", file=sys.stderr,
              flush=True)
    cpu = cpu_info()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"cpu": {"model": cpu.model, "features": cpu.features},
                                    "clips": [r["id"] for r in rows], "errors": found},
                                   indent=1) + "\n")
    reference = found[str(args.models[0])]
    print("| model | word errors | extra words | clips worse by 1 | by 2+ | better |")
    print("|---|---|---|---|---|---|")
    for model_dir, errors in found.items():
        diff = [e - r for e, r in zip(errors, reference)]
        print(f"| {model_dir} | {sum(errors)} | {sum(diff):+d} | {sum(d == 1 for d in diff)} | "
              f"{sum(d >= 2 for d in diff)} | {sum(d < 0 for d in diff)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
