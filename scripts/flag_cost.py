"""What a transcribe flag costs: speed and WER of the transcribe command's own decoding
with its defaults and with each ``--variant`` of flags, in alternating rounds. It measures
the defaults that differ from faster-whisper's (beam size 1 against its 5; recordings over
30 s in VAD windows against its sequential, prompted decoding)::

    python scripts/flag_cost.py artifacts/tiny.en-ctranslate2-int8 --subset en \\
        --variant "--beam-size 5" -o docs/benchmarks/results/flag-cost-en.json

Each variant decodes exactly as ``whisper-exporters transcribe ARTIFACT FLAGS`` does (text
only), one file at a time (batch 1), on one loaded model per variant; the variants take
turns within every round, so a slow spell of the machine falls on all of them. Writes a
table results file for ``python -m bench.docs`` (the page's caption comes from it) and
prints the table.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULTS = "(defaults)"


def decoding_of(artifact: Path, flags: str):
    """The transcribe command's decoding with ``flags`` (text output)."""
    from runtimes.__main__ import build_parser
    from runtimes.cli import decoding_options, fitted

    args = build_parser().parse_args([str(artifact), "-", *shlex.split(flags)])
    return fitted(artifact, decoding_options(args, timestamps=args.timestamps,
                                             word_timestamps=args.word_timestamps), args)


def one_round(models: dict, audio: list) -> dict[str, tuple[float, list[str]]]:
    """Per variant: seconds spent and texts, one file at a time."""
    out = {}
    for name, model in models.items():
        texts, spent = [], 0.0
        for clip in audio:
            start = time.perf_counter()
            texts.append(model.transcribe([clip])[0].text)
            spent += time.perf_counter() - start
        out[name] = (spent, texts)
    return out


def table(rounds: list[dict], audio_s: float, clips) -> tuple[list, list]:
    """Columns and rows: RTFx median and range, time against the defaults, WER and CER."""
    from bench.metrics import error_rates

    refs, langs = [c.reference for c in clips], [c.language for c in clips]
    first = statistics.median(r[DEFAULTS][0] for r in rounds)
    rows = []
    for name in rounds[0]:
        speeds = [audio_s / r[name][0] for r in rounds]
        rates = error_rates(refs, rounds[0][name][1], langs)
        seconds = statistics.median(r[name][0] for r in rounds)
        rows.append([f"`{name}`" if name != DEFAULTS else name,
                     f"{statistics.median(speeds):.1f}", f"{min(speeds):.1f}–{max(speeds):.1f}",
                     f"{seconds / first:.2f}x", f"{100 * rates.wer:.2f}",
                     f"{100 * rates.cer:.2f}"])
    columns = ["transcribe flags", "RTFx (median)", "range", "time vs defaults", "WER %", "CER %"]
    return columns, rows


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("artifact", type=Path)
    p.add_argument("--variant", action="append", default=[], metavar="FLAGS",
                   help="transcribe flags to measure against the defaults, quoted; repeatable")
    p.add_argument("--manifest", type=Path,
                   default=ROOT.parent / "shared" / "data" / "speech" / "manifest.tsv")
    p.add_argument("--subset", default="en", help="manifest subset (default: en)")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds (default: 3)")
    p.add_argument("--threads", type=int, default=2, help="runtime threads (default: 2)")
    p.add_argument("-o", "--output", type=Path, required=True, help="results file (.json)")
    return p


def main(argv: list[str] | None = None) -> int:
    import runtimes
    from bench.options import provenance
    from runtimes.audio.datasets import load_clips
    from runtimes.audio.files import load_audio

    args = build_parser().parse_args(argv)
    command = "python scripts/flag_cost.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    clips = load_clips(args.manifest, args.subset)
    audio = [load_audio(c.path) for c in clips]
    audio_s = sum(len(a) for a in audio) / 16000
    options = runtimes.RuntimeOptions(threads=args.threads)
    models = {name: runtimes.load(args.artifact, options, decoding_of(args.artifact, flags))
              for name, flags in [(DEFAULTS, ""), *((v, v) for v in args.variant)]}
    rounds = []
    for i in range(args.rounds):
        rounds.append(one_round(models, audio))
        print(f"round {i + 1}/{args.rounds}: " + ", ".join(
            f"{name} {audio_s / t:.1f} RTFx" for name, (t, _) in rounds[-1].items()),
            file=sys.stderr)
    runtime = models[DEFAULTS].runtime
    same = all(r[name][1] == rounds[0][name][1] for r in rounds for name in models)
    notes = [f"{len(clips)} files of `{args.subset}`, {audio_s:.0f} s of audio; {args.rounds} "
             f"rounds, the variants alternating in each; texts "
             f"{'identical' if same else 'NOT identical'} across rounds",
             f"artifact: {args.artifact} ({runtime.format} {runtime.precision}); the defaults: "
             f"beam size 1, faster-whisper's fallback ladder and thresholds, recordings over "
             f"30 s in VAD windows decoded in parallel"]
    for model in models.values():
        model.close()
    columns, rows = table(rounds, audio_s, clips)
    results = {"run": provenance(command, args.threads), "columns": columns, "rows": rows,
               "notes": notes}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    print("| " + " | ".join(results["columns"]) + " |")
    for row in results["rows"]:
        print("| " + " | ".join(map(str, row)) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
