"""Start ``python -m runtimes.serve`` as a child process on a free loopback port.

The load-test script and the tests use it, so both exercise the real command a user runs.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from runtimes.errors import ToolkitError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ServerProcess:
    """A running server; ``url`` is its root (``url + "/v1"`` for OpenAI clients)."""

    process: subprocess.Popen
    url: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_server(artifact: Path, *args: str, start_timeout_s: float = 180.0,
                 command: list[str] | None = None, env: dict | None = None) -> ServerProcess:
    """Serve ``artifact`` with extra CLI ``args``; returns once /health answers.

    ``command`` replaces ``python -m runtimes.serve ARTIFACT`` (e.g. a bundle's serve.sh).

    Raises:
        ToolkitError: the server exited or did not answer in time (the message has its log).
    """
    port = free_port()
    log_path = Path(tempfile.mkstemp(prefix="whisper-serve-", suffix=".log")[1])
    with open(log_path, "w") as log_file:
        command = command or [sys.executable, "-m", "runtimes.serve", str(artifact)]
        process = subprocess.Popen([*command, "--port", str(port), "--log-level", "warning", *args],
                                   stdout=log_file, stderr=subprocess.STDOUT, env=env)
    server = ServerProcess(process, f"http://127.0.0.1:{port}", log_path)
    deadline = time.monotonic() + start_timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ToolkitError(f"server exited with code {process.returncode}:\n{server.log()}")
        try:
            with urllib.request.urlopen(server.url + "/health", timeout=2) as response:
                if response.status == 200:
                    return server
        except OSError:
            time.sleep(0.25)
    server.stop()
    raise ToolkitError(f"server did not answer /health within {start_timeout_s:g} s:\n{server.log()}")
