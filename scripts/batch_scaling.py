"""The batch job against the plain command line on the same files, in one run.

    python scripts/batch_scaling.py ARTIFACT --subset en longform --actors 1 2

Runs, one after the other on this machine: ``python -m runtimes ARTIFACT FILES --format
json`` (timestamps on, as the batch job's default) and ``python -m runtimes.batch`` with
each ``--actors`` count on a fresh local Ray (each actor gets cores/actors threads and
reserves that many CPUs). Prints a markdown table: wall seconds (Ray's start included),
RTFx, the ratio to the plain command, the actors' busy seconds (the sum of every file's
share of its actor call) and the throughput per actor while busy; checks that every run
gave the plain command's transcripts. Results go to ``--out`` (report.md).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runtimes.batch.inputs import list_inputs  # noqa: E402
from runtimes.cpu import cpu_info  # noqa: E402

DEFAULT_MANIFEST = ROOT.parent / "shared" / "data" / "speech" / "manifest.tsv"


def _timed(command: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(command)}\n"
                         f"{done.stderr[-2000:]}")
    return wall, done.stdout


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("artifact", type=Path)
    p.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST)
    p.add_argument("--subset", nargs="+", default=["en", "longform"])
    p.add_argument("--actors", type=int, nargs="+", default=[1, 2])
    p.add_argument("--out", type=Path, default=Path("results/batch-scaling"))
    args = p.parse_args(argv)
    cores = os.cpu_count() or 1
    files = [str(f) for f in list_inputs([str(args.manifest)], args.subset)]
    python = sys.executable
    wall, stdout = _timed([python, "-m", "runtimes", str(args.artifact), *files,
                           "--format", "json", "--threads", str(cores)])
    plain = {j["file"]: j for j in map(json.loads, stdout.splitlines())}
    audio = sum(j["duration"] for j in plain.values())
    rows = [("`python -m runtimes`", wall, "", "", True)]
    for actors in args.actors:
        threads = max(1, cores // actors)
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "out"
            batch_wall, _ = _timed([python, "-m", "runtimes.batch", str(args.artifact), *files,
                                    "--out", str(out), "--actors", str(actors),
                                    "--threads", str(threads), "--cpus-per-actor", str(threads)])
            results = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
        same = len(results) == len(plain) and all(
            (r["text"], r["segments"]) == (plain[r["path"]]["text"], plain[r["path"]]["segments"])
            for r in results)
        busy = sum(r["seconds"] for r in results)
        rows.append((f"`python -m runtimes.batch`, {actors} actor(s) x {threads} thread(s)",
                     batch_wall, f"{busy:.1f}", f"{audio / busy:.1f}", same))
    lines = [f"{len(files)} files, {audio:.1f} s of audio ({', '.join(args.subset)}); "
             f"{cores} cores, {cpu_info().label()}", "",
             "| run | wall s | RTFx | wall vs plain | actors busy s | RTFx per actor while busy "
             "| same transcripts |", "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for name, seconds, busy, per_actor, same in rows:
        lines.append(f"| {name} | {seconds:.1f} | {audio / seconds:.1f} | "
                     f"{seconds / rows[0][1]:.2f} | {busy} | {per_actor} | {'yes' if same else 'NO'} |")
    report = "\n".join(lines)
    print(report)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.md").write_text(report + "\n")
    return 0 if all(r[4] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
