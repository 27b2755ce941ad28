"""A/B of text-only transcription between another checkout and this one: same artifact, same
`en` clips, alternating rounds in one run, each round a fresh process.

    git worktree add /tmp/old COMMIT
    python scripts/text_only_ab.py /tmp/old ARTIFACT [--rounds 2] [--threads 2]

Prints each side's RTFx per round (batch 8) and how many transcripts are token-for-token
equal: a change to the decoding loop must keep both.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_ROUND = r'''
import sys, time, json, csv
sys.path.insert(0, sys.argv[1])
import runtimes
from runtimes.audio.files import load_audio
speech = sys.argv[3]
with open(speech + "/manifest.tsv", newline="", encoding="utf-8") as f:
    rows = [r for r in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
            if r["subset"] == "en"]
audio = [load_audio(speech + "/" + r["path"]) for r in rows]
with runtimes.load(sys.argv[2], runtimes.RuntimeOptions(threads=int(sys.argv[4]))) as m:
    m.transcribe(audio[:2], 8)
    started = time.perf_counter()
    out = m.transcribe(audio, 8)
    seconds = time.perf_counter() - started
print(json.dumps({"rtfx": sum(len(a) for a in audio) / 16000 / seconds,
                  "tokens": [list(o.tokens) for o in out]}))
'''


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("other", type=Path, help="the other checkout (e.g. a git worktree)")
    p.add_argument("artifact", type=Path)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--speech", type=Path, default=ROOT.parent / "shared/data/speech")
    args = p.parse_args(argv)
    sides = {"other": args.other.resolve(), "this": ROOT}
    found: dict[str, list[dict]] = {name: [] for name in sides}
    for _ in range(args.rounds):
        for name, root in sides.items():
            run = subprocess.run([sys.executable, "-c", _ROUND, str(root), str(args.artifact),
                                  str(args.speech), str(args.threads)],
                                 capture_output=True, text=True)
            if run.returncode != 0:
                print(f"error: the {name} checkout failed: {run.stderr.strip()[-500:]}",
                      file=sys.stderr)
                return 2
            found[name].append(json.loads(run.stdout.strip().splitlines()[-1]))
    for name, rounds in found.items():
        print(f"{name} ({sides[name]}): RTFx " + ", ".join(f"{r['rtfx']:.1f}" for r in rounds))
    same = sum(a == b for a, b in zip(found["other"][0]["tokens"], found["this"][0]["tokens"]))
    print(f"identical transcripts: {same} of {len(found['this'][0]['tokens'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
