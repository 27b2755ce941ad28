"""Why the log-mel runs numpy's BLAS on one thread: batch-1 speed with and without the limit.

    python scripts/blas_threads.py [ARTIFACT ...] [--rounds 3]

Transcribes the ``en`` clips one at a time with each artifact (default: bundled tiny.en
exported to OpenVINO int8 and CTranslate2 int8 in a temporary directory), alternating
"limit on" (the toolkit's behaviour, runtimes.audio.features.single_threaded_blas) and "limit
off" (the mel projection as a plain numpy matmul, which wakes OpenBLAS's threads) for
``--rounds`` rounds in one process. Prints batch-1 RTFx per mode (median and range of the
rounds), the on/off ratio, and whether the transcripts are the same.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runtimes.audio import features  # noqa: E402
from runtimes.audio.datasets import from_manifest  # noqa: E402
from runtimes.audio.files import load_audio  # noqa: E402

DEFAULT_MANIFEST = ROOT.parent / "shared" / "data" / "speech" / "manifest.tsv"
DEFAULT_EXPORTS = (("openvino", "int8"), ("ctranslate2", "int8"))


def _plain_matmul(filters, power):
    return filters @ power.T


def _rtfx(model, audio: list, seconds: float) -> tuple[float, list[str]]:
    started = time.perf_counter()
    texts = [model.transcribe([a], 1)[0].text for a in audio]
    return seconds / (time.perf_counter() - started), texts


def measure(path: Path, audio: list, seconds: float, rounds: int, threads: int) -> dict:
    """RTFx per round for each mode, alternating, in this process."""
    import runtimes

    limited = features._mel_power
    rtfx: dict[str, list[float]] = {"on": [], "off": []}
    texts: dict[str, list[str]] = {}
    with runtimes.load(path, runtimes.RuntimeOptions(threads=threads)) as model:
        model.transcribe(audio[:2], 1)  # warm-up
        for _ in range(rounds):
            for mode in ("off", "on"):
                features._mel_power = limited if mode == "on" else _plain_matmul
                try:
                    value, texts[mode] = _rtfx(model, audio, seconds)
                finally:
                    features._mel_power = limited
                rtfx[mode].append(value)
        name = f"{model.runtime.format} {model.runtime.precision}"
    return {"name": name, **rtfx, "same_text": texts["on"] == texts["off"]}


def _export_defaults(tmp: Path) -> list[Path]:
    from exporters.api import export
    from exporters.options import ExportOptions

    paths = []
    for target, precision in DEFAULT_EXPORTS:
        out = tmp / f"{target}-{precision}"
        export("bundled:tiny.en", ExportOptions(target, precision), out, log=lambda _: None)
        paths.append(out)
    return paths


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("artifacts", nargs="*", type=Path)
    p.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST)
    p.add_argument("--subset", default="en")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    if args.rounds < 1:
        p.error(f"--rounds must be >= 1, got {args.rounds}")
    clips = from_manifest(args.manifest, args.subset)
    audio = [load_audio(c.path) for c in clips]
    seconds = sum(len(a) for a in audio) / 16000
    tmp = Path(tempfile.mkdtemp(prefix="blas-"))
    try:
        paths = args.artifacts or _export_defaults(tmp)
        print(f"{len(clips)} {args.subset} clips, {seconds:.0f} s, batch 1, {args.threads} threads, "
              f"{args.rounds} alternating rounds\n")
        print("| artifact | RTFx b1, BLAS limit off | RTFx b1, limit on (default) | on/off | "
              "same transcripts |\n|---|---|---|---|---|")
        for path in paths:
            r = measure(path, audio, seconds, args.rounds, args.threads)
            off, on = statistics.median(r["off"]), statistics.median(r["on"])
            print(f"| {r['name']} | {off:.1f} ({min(r['off']):.1f}–{max(r['off']):.1f}) | "
                  f"{on:.1f} ({min(r['on']):.1f}–{max(r['on']):.1f}) | {on / off:.2f}x | "
                  f"{'yes' if r['same_text'] else 'no'} |", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
