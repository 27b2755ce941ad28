"""whisper.cpp as users run it, beside one toolkit artifact, until it is a bench peer row.

    python scripts/whispercpp_peer.py ARTIFACT --types q8_0 q5_0 f16

Writes the source model (default bundled tiny.en) as whisper.cpp ggml files of each type
(``exporters.ggml_format``), then transcribes the subset's clips one by one with
whisper.cpp's own ``transcribe`` (pywhispercpp: its own log-mel, greedy, no context, its
fallback off) and with the toolkit's ARTIFACT at batch 1, after one warm-up clip each, on
the same threads. Prints a markdown table: wall seconds, RTFx, WER. One pass each: compare
the ratios within a run, not across runs.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runtimes.audio import load_audio  # noqa: E402
from runtimes.cpu import cpu_info  # noqa: E402
from runtimes.datasets import from_manifest  # noqa: E402

DEFAULT_MANIFEST = ROOT.parent / "shared" / "data" / "speech" / "manifest.tsv"


def _timed(transcribe, audio: list) -> tuple[float, list[str]]:
    transcribe(audio[0])  # warm-up
    start = time.perf_counter()
    texts = [transcribe(a) for a in audio]
    return time.perf_counter() - start, texts


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("artifact", type=Path, help="the toolkit artifact to compare with")
    p.add_argument("--model", default="bundled:tiny.en", help="source of the ggml files")
    p.add_argument("--types", nargs="+", default=["q8_0", "q5_0", "f16"])
    p.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST)
    p.add_argument("--subset", default="en")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)

    from pywhispercpp.model import Model
    from transformers import WhisperForConditionalGeneration

    import runtimes
    from bench.metrics import error_rates
    from exporters.ggml_format import write_ggml
    from exporters.sources import resolve

    clips = from_manifest(args.manifest, args.subset)
    audio = [load_audio(c.path) for c in clips]
    seconds = sum(a.size for a in audio) / 16000
    rows = []
    options = runtimes.RuntimeOptions(threads=args.threads)
    with runtimes.load(args.artifact, options) as model:
        wall, texts = _timed(lambda a: model.transcribe([a])[0].text, audio)
        name = f"toolkit {model.runtime.format} {model.runtime.precision}, batch 1"
        rows.append((name, wall, texts))
    hf_dir = resolve(args.model).hf_dir
    reference = WhisperForConditionalGeneration.from_pretrained(hf_dir)
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.types:
            path = Path(tmp) / f"ggml-{kind}.bin"
            write_ggml(reference, hf_dir, path, kind)
            whisper_cpp = Model(str(path), n_threads=args.threads, print_progress=False,
                                print_realtime=False, redirect_whispercpp_logs_to=None,
                                no_context=True, temperature_inc=0.0)
            wall, texts = _timed(lambda a, w=whisper_cpp: " ".join(
                s.text for s in w.transcribe(a)), audio)
            rows.append((f"whisper.cpp {kind} ({path.stat().st_size / 1e6:.1f} MB), its own "
                         "transcribe", wall, texts))
    refs = [c.reference for c in clips]
    print(f"{len(clips)} {args.subset} clips, {seconds:.1f} s of audio, {args.threads} threads, "
          f"{cpu_info().label()}\n")
    print("| system | wall s | RTFx | WER % |\n|---|---:|---:|---:|")
    for name, wall, texts in rows:
        wer = error_rates(refs, texts, [c.language for c in clips]).wer
        print(f"| {name} | {wall:.1f} | {seconds / wall:.1f} | {100 * wer:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
