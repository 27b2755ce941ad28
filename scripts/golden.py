"""Golden transcripts: what each artifact decodes, in every decoding mode, as one JSON file.

A refactor of the decoding core must not change a single token. This script records, for
each model, the tokens, text, segments and words it gives on the speech clips in several
modes (the comparison's batch-1 greedy on ``en`` and ``longform``, batched greedy, beam
search, the temperature-fallback ladder with timestamps, words, sequential long-form), so
two commits can be compared exactly on the same artifacts::

    python scripts/golden.py dump --out before.json ARTIFACT...   # at the old commit
    python scripts/golden.py dump --out after.json ARTIFACT...    # at the new one
    python scripts/golden.py diff before.json after.json
    python scripts/golden.py serve ARTIFACT    # the server's transcripts = the CLI's

Only the public API is used (``runtimes.load``, ``DecodingOptions``, ``transcribe``), so
the same file runs against older checkouts (``PYTHONPATH=OLD python scripts/golden.py``).
Identical tokens imply identical WER, CER and token agreement in the comparison.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: mode -> (DecodingOptions fields, clips, batch size); clips: "en", "en8" (first 8 en),
#: "longform", "both" (en and longform)
LADDER = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
MODES: dict[str, tuple[dict, str, int]] = {
    "greedy": ({}, "both", 1),
    "greedy-batch8": ({}, "en", 8),
    "beam4": ({"beam_size": 4}, "en8", 4),
    "fallback-timestamps": ({"temperature": LADDER, "timestamps": True}, "longform", 1),
    "words": ({"word_timestamps": True}, "en8", 8),
    "sequential": ({"long_form": "sequential", "timestamps": True}, "longform", 1),
}


def clips(speech: Path) -> dict[str, list[Path]]:
    with open(speech / "manifest.tsv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    en = [speech / r["path"] for r in rows if r["subset"] == "en"]
    longform = [speech / r["path"] for r in rows if r["subset"] == "longform"]
    return {"en": en, "en8": en[:8], "longform": longform, "both": en + longform}


def _r(value: float, digits: int) -> float | None:
    """Rounded past what float noise touches; nan (not scored) as None, which compares."""
    return None if value != value else round(float(value), digits)


def record(transcription) -> dict:
    """What a transcription says: tokens, text, and each segment's times, scores and words."""
    return {"tokens": list(transcription.tokens), "text": transcription.text,
            "segments": [[_r(s.start, 3), _r(s.end, 3), s.text, _r(s.avg_logprob, 4),
                          _r(s.no_speech_prob, 4), _r(s.temperature, 2),
                          [[w.word, _r(w.start, 3), _r(w.end, 3)] for w in s.words]]
                         for s in transcription.segments]}


def dump_model(model_dir: Path, audio: dict, threads: int) -> dict:
    import runtimes

    found: dict = {}
    for mode, (fields, which, batch) in MODES.items():
        started = time.perf_counter()
        options = runtimes.RuntimeOptions(threads=threads, trust_code=True)
        try:
            with runtimes.load(model_dir, options, runtimes.DecodingOptions(**fields)) as model:
                found[mode] = [record(t) for t in model.transcribe(audio[which], batch)]
        except Exception as exc:  # noqa: BLE001 - a mode the artifact refuses is recorded
            found[mode] = f"refused: {type(exc).__name__}: {str(exc).splitlines()[0]}"
        print(f"  {mode}: {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    return found


def dump(args: argparse.Namespace) -> int:
    try:
        from runtimes.audio.files import load_audio
    except ImportError:  # checkouts from before runtimes/ had folders
        from runtimes.audio import load_audio

    paths = clips(args.speech)
    loaded = {p: load_audio(p) for p in paths["both"]}
    audio = {name: [loaded[p] for p in found] for name, found in paths.items()}
    result = {}
    for model_dir in args.models:
        print(f"{model_dir}", file=sys.stderr, flush=True)
        result[model_dir.name] = dump_model(model_dir, audio, args.threads)
    args.out.write_text(json.dumps(result, indent=0) + "\n")
    return 0


def diff(args: argparse.Namespace) -> int:
    before, after = (json.loads(p.read_text()) for p in (args.before, args.after))
    differing = 0
    print("| model | mode | items | equal |")
    print("|---|---|---|---|")
    for model in sorted(set(before) | set(after)):
        for mode in MODES:
            old, new = before.get(model, {}).get(mode), after.get(model, {}).get(mode)
            if isinstance(old, list) and isinstance(new, list):
                equal = sum(a == b for a, b in zip(old, new)) if len(old) == len(new) else 0
                same = equal == len(old)
                print(f"| {model} | {mode} | {len(old)} | {equal} |")
            else:
                same = old == new
                print(f"| {model} | {mode} | - | {'same: ' + str(old) if same else 'DIFFERS'} |")
            differing += not same
    print(f"\n{differing} model x mode cells differ", file=sys.stderr)
    return 1 if differing else 0


def serve(args: argparse.Namespace) -> int:
    """The ``en`` clips through ``python -m runtimes --format json`` and through the server
    (8 concurrent clients, verbose_json): text and segment times must be equal clip by clip.
    A batch-variant artifact's clips are compared with the CLI at batch 1: the server never
    batches strangers' windows together for it, and batch 8 may change its text."""
    import concurrent.futures
    import subprocess

    import httpx

    from runtimes.artifacts.manifest import read_manifest
    from runtimes.serve.launch import start_server

    paths = clips(args.speech)["en"]
    batch = "8" if read_manifest(args.artifact).batch_invariant else "1"
    cli = subprocess.run([sys.executable, "-m", "runtimes", str(args.artifact), *map(str, paths),
                          "--format", "json", "--threads", "2", "--batch-size", batch], check=True,
                         capture_output=True, text=True).stdout.splitlines()
    offline = [json.loads(line) for line in cli]

    def post(path: Path) -> dict:
        response = httpx.post(server.url + "/v1/audio/transcriptions", timeout=300,
                              data={"model": "whisper-1", "response_format": "verbose_json"},
                              files={"file": (path.name, path.read_bytes())})
        response.raise_for_status()
        return response.json()

    with start_server(args.artifact, "--threads", "2", *args.server_args) as server, \
            concurrent.futures.ThreadPoolExecutor(8) as pool:
        served = list(pool.map(post, paths))
    times = lambda body: [(round(s["start"], 3), round(s["end"], 3))  # noqa: E731
                          for s in body["segments"]]
    text = sum(a["text"] == b["text"] for a, b in zip(offline, served))
    segments = sum(times(a) == times(b) for a, b in zip(offline, served))
    print(f"{args.artifact.name}: {len(paths)} en clips, text equal {text}, segment times "
          f"equal {segments} (server {' '.join(args.server_args) or 'defaults'})")
    return 0 if text == segments == len(paths) else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("dump", help="transcribe and write the golden file")
    d.add_argument("models", nargs="+", type=Path)
    d.add_argument("--out", type=Path, required=True)
    d.add_argument("--speech", type=Path, default=ROOT.parent / "shared/data/speech")
    d.add_argument("--threads", type=int, default=2)
    c = sub.add_parser("diff", help="compare two golden files (exit 1 if any cell differs)")
    c.add_argument("before", type=Path)
    c.add_argument("after", type=Path)
    v = sub.add_parser("serve", help="the server's transcripts against the CLI's on en")
    v.add_argument("artifact", type=Path)
    v.add_argument("--speech", type=Path, default=ROOT.parent / "shared/data/speech")
    v.add_argument("server_args", nargs="*", help="more server flags (after --)")
    args = p.parse_args()
    return {"dump": dump, "diff": diff, "serve": serve}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
