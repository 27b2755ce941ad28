"""The README's quick start runs as written: export, transcribe, bench and serve, with the
installed ``whisper-exporters`` command, in a fresh folder beside the speech data, on the
artifact the demo exports. Two liberties, both stated: the bench gets ``--limit 4`` (the
command as written measures 56 clips for minutes), and the server a free port after the
README's ``--port 8000`` (the last one wins), so a busy port 8000 cannot fail the test."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from runtimes.serve.launch import start_server
from tests.slow.test_docs_commands import shell_lines

ROOT = Path(__file__).resolve().parents[2]
COMMAND = Path(sys.executable).parent / "whisper-exporters"

pytestmark = pytest.mark.slow


def quick_start() -> list[list[str]]:
    """The README's quick-start commands (the code block after the set-up commands), split
    into words."""
    text = (ROOT / "README.md").read_text()
    start = text.index("every step is one command")
    block = text[start:text.index("```\n", text.index("```bash", start) + 7) + 4]
    return [shlex.split(line) for line in shell_lines(block) if not line.startswith("#")]


def demo_artifact() -> str:
    """The artifact ``scripts/demo.sh`` exports, which the quick start transcribes."""
    found = re.search(r"^artifact=(\S+)$", (ROOT / "scripts" / "demo.sh").read_text(), re.M)
    return found.group(1)


def run(words: list[str], cwd: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(COMMAND), *words[1:]], cwd=cwd, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, f"{shlex.join(words)}\n{proc.stderr[-3000:]}"
    return proc


def test_the_readme_quick_start_runs_as_written(tmp_path, monkeypatch):
    assert COMMAND.is_file(), f"{COMMAND} is not installed: run `bash scripts/setup.sh`"
    commands = quick_start()
    assert [w[:2] for w in commands] == [["whisper-exporters", s] for s in
                                         ("export", "transcribe", "bench", "serve")]
    work = tmp_path / "checkout"  # ../shared from here is the speech data, as in a checkout
    work.mkdir()
    (tmp_path / "shared").symlink_to(ROOT.parent / "shared")
    demo = demo_artifact()
    assert demo in commands[1] and demo in commands[3], "the quick start uses the demo's export"
    run(["whisper-exporters", "export", "--to", "ctranslate2", "--int8", "-o", demo], work)

    export, transcribe, bench, serve = commands
    exported = run(export, work)
    assert (work / export[export.index("-o") + 1] / "artifact.json").is_file(), exported.stderr
    text = run(transcribe, work).stdout.lower()
    assert "ask not what your country can do for you" in text, text
    run([*bench, "--limit", "4", "-o", "bench"], work)
    report = (work / "bench" / "report.md").read_text()
    for row in ("| onnx int8 |", "| ctranslate2 int8_float32 |", "| pytorch fp32 |"):
        assert row in report, report

    monkeypatch.chdir(work)
    with start_server(Path(serve[2]), command=[str(COMMAND), *serve[1:]]) as server:
        from openai import OpenAI

        client = OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
        jfk = ROOT.parent / "shared" / "data" / "speech" / "jfk" / "jfk.flac"
        with open(jfk, "rb") as f:
            said = client.audio.transcriptions.create(model="whisper-1", file=f).text
    assert "ask not what your country can do for you" in said.lower(), said
