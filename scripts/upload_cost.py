"""What one upload costs a running server: status, seconds, resident memory and CPU time.

    python scripts/upload_cost.py ARTIFACT FILE... [--bomb] [-- SERVER ARGS...]

Starts ``python -m runtimes.serve ARTIFACT`` (with any server arguments after ``--``),
uploads each FILE in turn to /v1/audio/transcriptions and reads the server's RSS and CPU
time from /proc before and after each request, and its peak RSS during it (Linux).
``--bomb`` adds the decompression bomb of the project's issue 15: a 21.6 KB WAV at 1 Hz
whose header claims 3 hours. It is how the README's reliability figures were measured; the
tests assert the memory bound.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import wave
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runtimes.errors import ToolkitError  # noqa: E402


def write_bomb(path: Path) -> Path:
    """10800 random samples at 1 Hz: 21.6 KB that claims 3 hours of audio."""
    import numpy as np

    samples = np.random.default_rng(0).normal(0, 8000, 10800).astype("int16")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(1)
        out.writeframes(samples.tobytes())
    return path


def usage(pid: int, field: str = "VmRSS") -> tuple[float, float]:
    """Resident memory (MB; ``VmHWM`` for its peak) and CPU time (user + system, s) of
    process ``pid``."""
    with open(f"/proc/{pid}/status") as status:
        rss = next(int(line.split()[1]) for line in status if line.startswith(field)) / 1024
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return rss, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def reset_peak(pid: int) -> None:
    """Reset the kernel's peak-RSS mark (VmHWM) of ``pid`` to its current RSS (Linux)."""
    with open(f"/proc/{pid}/clear_refs", "w") as refs:
        refs.write("5")


def upload(url: str, path: Path, timeout_s: float) -> tuple[int, str]:
    import httpx

    with open(path, "rb") as audio:
        response = httpx.post(f"{url}/v1/audio/transcriptions", timeout=timeout_s,
                              data={"model": "whisper"}, files={"file": (path.name, audio)})
    return response.status_code, response.text[:160].replace("\n", " ")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    server_args = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("artifact", type=Path)
    p.add_argument("files", type=Path, nargs="*")
    p.add_argument("--bomb", action="store_true", help="also upload the 1 Hz WAV bomb")
    p.add_argument("--request-timeout", type=float, default=600.0)
    args = p.parse_args(argv)
    from runtimes.serve.launch import start_server

    files = list(args.files)
    if args.bomb:
        files.insert(0, write_bomb(Path(tempfile.mkdtemp()) / "bomb-1hz.wav"))
    try:
        missing = [str(f) for f in files if not f.is_file()]
        if missing or not files:
            raise ToolkitError(f"no such file: {', '.join(missing)}" if missing
                               else "nothing to upload: give FILE... or --bomb")
        with start_server(args.artifact, *server_args) as server:
            pid = server.process.pid
            print("| upload | KB | HTTP | seconds | server RSS MB before -> after | peak RSS "
                  "MB | CPU s | answer |")
            print("|---|---:|---:|---:|---|---:|---:|---|")
            for path in files:
                reset_peak(pid)
                rss0, cpu0 = usage(pid)
                start = time.perf_counter()
                status, answer = upload(server.url, path, args.request_timeout)
                seconds = time.perf_counter() - start
                rss1, cpu1 = usage(pid)
                peak = usage(pid, "VmHWM")[0]
                print(f"| {path.name} | {path.stat().st_size / 1024:.1f} | {status} | "
                      f"{seconds:.2f} | {rss0:.0f} -> {rss1:.0f} (+{rss1 - rss0:.0f}) | "
                      f"{peak:.0f} (+{peak - rss0:.0f}) | {cpu1 - cpu0:.2f} | {answer} |",
                      flush=True)
    except ToolkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
