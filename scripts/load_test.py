"""Load-test the transcription server: N concurrent clients on loopback, with and without
dynamic batching, in one run.

    python scripts/load_test.py artifacts/tiny.en-ctranslate2-int8_float32 --clients 8

Starts ``python -m runtimes.serve`` on free loopback ports, once with
``--max-batch-size 1`` and once per ``--batching`` kind with the batched setting,
alternating them ``--repeats`` times, and sends each the same requests (every clip of the
subset, ``--rounds`` times, closed loop: each client sends its next request when the
previous one is answered). Prints a markdown table: throughput in audio seconds per second,
latency p50/p95/p99, errors, mean batch size, the batched/unbatched throughput ratio, and
the server's CPU seconds per wall second ("server cores": near the core count means the
machine is the limit).
``--url`` tests a server that is already running instead. Results go to ``--out``
(report.md, results.json).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runtimes.audio.datasets import from_manifest  # noqa: E402
from runtimes.audio.files import duration_s, load_audio  # noqa: E402
from runtimes.errors import ToolkitError  # noqa: E402
from runtimes.serve.config import BATCHING  # noqa: E402

LABELS = {"steps": "joining at every decoder step", "windows": "joining per batch"}

DEFAULT_MANIFEST = ROOT.parent / "shared" / "data" / "speech" / "manifest.tsv"


@dataclass(frozen=True)
class LoadResult:
    mode: str
    requests: int
    errors: int
    wall_s: float
    audio_s: float
    throughput: float  # audio seconds transcribed per wall second
    p50_s: float
    p95_s: float
    p99_s: float
    mean_batch: float  # windows per model call, from the server's /metrics (nan if not ours)
    error_samples: tuple[str, ...]
    server_cores: float = float("nan")  # server CPU seconds per wall second (nan: unknown)


@dataclass(frozen=True)
class Request:
    name: str
    data: bytes
    seconds: float


def load_requests(manifest: Path, subset: str, limit: int | None, rounds: int) -> list[Request]:
    clips = from_manifest(manifest, subset, limit)
    once = [Request(c.path.name, c.path.read_bytes(), duration_s(load_audio(c.path)))
            for c in clips]
    return once * rounds


async def _client(http, url: str, queue: asyncio.Queue, latencies: list, errors: list,
                  headers: dict) -> None:
    while True:
        try:
            request = queue.get_nowait()
        except asyncio.QueueEmpty:
            return
        started = time.perf_counter()
        try:
            response = await http.post(url, headers=headers, data={"model": "whisper-1"},
                                       files={"file": (request.name, request.data)})
            ok = response.status_code == 200
            detail = f"{response.status_code} {response.text[:200]}"
        except Exception as exc:  # noqa: BLE001 - every failure is counted and reported
            ok, detail = False, f"{type(exc).__name__}: {exc}"
        (latencies if ok else errors).append(time.perf_counter() - started if ok else detail)


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of a process so far (Linux /proc; nan elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, TypeError):
        return float("nan")


async def run_load(base_url: str, requests: list[Request], clients: int, mode: str,
                   api_key: str | None = None, timeout_s: float = 300.0,
                   server_pid: int | None = None) -> LoadResult:
    """Send every request through ``clients`` concurrent connections; time the whole run.
    With ``server_pid``, also how many cores the server kept busy (on 2 cores, near 2
    means the machine, not the batching, is the limit)."""
    import httpx

    queue: asyncio.Queue = asyncio.Queue()
    for request in requests:
        queue.put_nowait(request)
    latencies: list[float] = []
    errors: list[str] = []
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    url = base_url.rstrip("/") + "/v1/audio/transcriptions"
    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(timeout=timeout_s, limits=limits) as http:
        started, cpu = time.perf_counter(), cpu_seconds(server_pid)
        await asyncio.gather(*(_client(http, url, queue, latencies, errors, headers)
                               for _ in range(clients)))
        wall = time.perf_counter() - started
        cores = (cpu_seconds(server_pid) - cpu) / wall
        mean_batch = await _mean_batch(http, base_url, headers)
    audio = sum(r.seconds for r in requests)
    p50, p95, p99 = (np.percentile(latencies, [50, 95, 99]) if latencies else (np.nan,) * 3)
    return LoadResult(mode, len(requests), len(errors), wall, audio, audio / wall,
                      float(p50), float(p95), float(p99), mean_batch, tuple(errors[:3]), cores)


async def _mean_batch(http, base_url: str, headers: dict) -> float:
    """Mean batch size since the server started, read from its Prometheus metrics."""
    try:
        text = (await http.get(base_url.rstrip("/") + "/metrics", headers=headers)).text
        values = dict(line.split(" ", 1) for line in text.splitlines()
                      if line.startswith("whisper_batch_size_"))
        return float(values["whisper_batch_size_sum"]) / float(values["whisper_batch_size_count"])
    except Exception:  # noqa: BLE001 - another server, or no batches yet: unknown
        return float("nan")


COLUMNS = ["mode", "requests", "errors", "wall s", "audio s/s", "vs off", "p50 s", "p95 s",
           "p99 s", "mean batch", "server cores"]


def table_rows(results: list[LoadResult]) -> list[list[str]]:
    """One row per mode: the median run's figures (the mode names the range)."""
    base = next((r for r in results if r.mode.startswith("batching off")), None)
    return [[r.mode, str(r.requests), str(r.errors), f"{r.wall_s:.1f}", f"{r.throughput:.1f}",
             f"{r.throughput / base.throughput:.2f}x" if base else "-", f"{r.p50_s:.2f}",
             f"{r.p95_s:.2f}", f"{r.p99_s:.2f}", f"{r.mean_batch:.1f}", f"{r.server_cores:.2f}"]
            for r in results]


def report(results: list[LoadResult], clients: int, artifact: str) -> str:
    errors = "; ".join(s for r in results for s in r.error_samples)
    lines = [f"Load test: {artifact}, {clients} concurrent clients, "
             f"{results[0].requests} requests ({results[0].audio_s:.0f} s of audio) per mode.", "",
             "| " + " | ".join(COLUMNS) + " |", "|---|" + "---:|" * (len(COLUMNS) - 1)]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(results)]
    if errors:
        lines += ["", f"First errors: {errors}"]
    return "\n".join(lines) + "\n"


def docs_table(results: list[LoadResult], args: argparse.Namespace, command: str) -> dict:
    """The run as ``python -m bench.docs`` renders a script's table (``table.json``: copy it
    to docs/benchmarks/results/NAME.json), with the command, commit and CPU."""
    from bench.options import provenance

    notes = [f"{args.clients} concurrent clients on loopback, closed loop; every clip of "
             f"`{args.subset}` sent {args.rounds} time(s): {results[0].requests} requests, "
             f"{results[0].audio_s:.0f} s of audio per run; the modes alternate "
             f"{args.repeats} time(s), the median run shown with the range of all "
             "(audio s/s) in brackets",
             "mean batch: rows per model call (per decoder step when joining at every step); "
             "server cores: the server's CPU seconds per wall second"]
    return {"run": provenance(command, args.threads), "columns": COLUMNS,
            "rows": table_rows(results), "notes": notes}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("artifact", nargs="?", type=Path, help="artifact to serve (not with --url)")
    p.add_argument("--url", help="test this running server instead of starting two")
    p.add_argument("--api-key", help="bearer key for --url")
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST)
    p.add_argument("--subset", default="en")
    p.add_argument("--limit", type=int, help="first N clips of the subset")
    p.add_argument("--rounds", type=int, default=1, help="send every clip this many times")
    p.add_argument("--repeats", type=int, default=1,
                   help="runs per mode, alternating; the median run is reported with the range")
    p.add_argument("--max-batch-size", type=int, default=8, help="the batched server's setting")
    p.add_argument("--max-wait-ms", type=float, default=10.0)
    p.add_argument("--batching", nargs="+", choices=BATCHING, default=["steps"],
                   help="the batched server's --batching; several = one batched mode each "
                        "(e.g. steps windows), all in the same run")
    p.add_argument("--threads", type=int, default=0, help="server intra-op threads; 0 = all")
    p.add_argument("-o", "--output", "--out", dest="out", metavar="DIR", type=Path,
                   default=Path("results/load-test"), help="default: results/load-test")
    return p


def _check(args: argparse.Namespace) -> None:
    if (args.url is None) == (args.artifact is None):
        raise ToolkitError("give an ARTIFACT to serve, or --url of a running server (not both)")
    for name in ("clients", "rounds", "repeats", "max_batch_size"):
        if getattr(args, name) < 1:
            raise ToolkitError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.artifact is not None and not args.artifact.is_dir():
        raise ToolkitError(f"artifact directory not found: {args.artifact}")


def _measure(args: argparse.Namespace, requests: list[Request]) -> list[LoadResult]:
    if args.url:
        return [asyncio.run(run_load(args.url, requests, args.clients, "as running", args.api_key))]
    from runtimes.serve.launch import start_server

    modes = [("batching off (max batch 1)", "1", "windows")] + [
        (f"dynamic batching, {LABELS[kind]} (max batch {args.max_batch_size})",
         str(args.max_batch_size), kind) for kind in dict.fromkeys(args.batching)]
    runs: dict[str, list[LoadResult]] = {mode: [] for mode, _, _ in modes}
    for repeat in range(args.repeats):  # alternate the modes, so drift hits all alike
        for mode, batch, kind in modes:
            print(f"[{repeat + 1}/{args.repeats}] {mode}", file=sys.stderr, flush=True)
            with start_server(args.artifact, "--max-batch-size", batch, "--max-wait-ms",
                              str(args.max_wait_ms), "--threads", str(args.threads),
                              "--batching", kind) as server:
                runs[mode].append(asyncio.run(run_load(server.url, requests, args.clients, mode,
                                                       server_pid=server.process.pid)))
            last = runs[mode][-1]
            print(f"  {last.throughput:.1f} audio s/s, {last.errors} errors", file=sys.stderr,
                  flush=True)
    return [_median_run(results) for results in runs.values()]


def _median_run(results: list[LoadResult]) -> LoadResult:
    """The run with the median throughput; errors summed over all runs of the mode."""
    ordered = sorted(results, key=lambda r: r.throughput)
    middle = ordered[(len(ordered) - 1) // 2]
    spread = f" [{ordered[0].throughput:.1f}-{ordered[-1].throughput:.1f}]" if len(results) > 1 else ""
    errors = sum(r.errors for r in results)
    samples = tuple(s for r in results for s in r.error_samples)[:3]
    return LoadResult(middle.mode + spread, middle.requests, errors, middle.wall_s,
                      middle.audio_s, middle.throughput, middle.p50_s, middle.p95_s,
                      middle.p99_s, middle.mean_batch, samples, middle.server_cores)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        _check(args)
        requests = load_requests(args.manifest, args.subset, args.limit, args.rounds)
        results = _measure(args, requests)
    except ToolkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    text = report(results, args.clients, str(args.url or args.artifact))
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.md").write_text(text)
    (args.out / "results.json").write_text(json.dumps([asdict(r) for r in results], indent=2))
    command = "python scripts/load_test.py " + " ".join(sys.argv[1:] if argv is None else argv)
    (args.out / "table.json").write_text(
        json.dumps(docs_table(results, args, command), indent=1, ensure_ascii=False) + "\n")
    return 1 if any(r.errors for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
