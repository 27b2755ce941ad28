"""Every command shown in the README and in docs/ exists and takes the flags it is shown
with: its module or script is there, and each flag appears in its ``--help``. Docs that
drift from the code fail here, not in a reader's terminal."""

from __future__ import annotations

import importlib.util
import re
import shlex
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]

pytestmark = pytest.mark.slow


def shell_lines(text: str) -> list[str]:
    """The lines of shell (and unlabelled) code blocks, continuations joined, comments dropped."""
    found, block, joined = [], None, ""
    for line in text.splitlines():
        if line.startswith("```"):
            block = None if block is not None else line[3:].strip()
            continue
        if block not in ("", "bash", "sh", "shell"):  # unlabelled blocks hold commands too
            continue
        joined += line.rstrip("\\").rstrip() + " " if line.endswith("\\") else line
        if not line.endswith("\\"):
            found.append(joined.split(" #")[0].strip())
            joined = ""
    return [line for line in found if line]


def toolkit_command(line: str) -> tuple[tuple[str, ...], list[str]] | None:
    """(how to call it, its arguments) for a toolkit command; None for other commands."""
    try:
        words = shlex.split(line)
    except ValueError:
        return None
    words = [w for w in words if not re.fullmatch(r"[A-Z_]+=\S*", w)]  # VAR=value prefixes
    if words[:1] == ["whisper-exporters"] and len(words) > 1:
        return ("whisper-exporters", words[1]), words[2:]
    if words[:2] == ["python", "-m"] and len(words) > 2:
        module, rest = words[2], words[3:]
        if module == "exporters" and rest and not rest[0].startswith("-"):
            return ("-m", module, rest[0]), rest[1:]
        return ("-m", module), rest
    if words[:1] == ["python"] and len(words) > 1 and words[1].startswith("scripts/"):
        return ("script", words[1]), words[2:]
    return None


@cache
def help_text(how: tuple[str, ...]) -> str:
    if how[0] == "whisper-exporters":
        argv = [sys.executable, "-m", "bench.commands", how[1], "--help"]
    elif how[0] == "-m":
        assert importlib.util.find_spec(how[1]) is not None, f"no module {how[1]}"
        argv = [sys.executable, "-m", *how[1:], "--help"]
    else:
        assert (ROOT / how[1]).is_file(), f"no script {how[1]}"
        argv = [sys.executable, str(ROOT / how[1]), "--help"]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, (how, done.stderr[-1500:])
    return done.stdout


def flags(args: list[str]) -> list[str]:
    return [a.split("=")[0] for a in args if re.fullmatch(r"--?[a-zA-Z][\w-]*(=.*)?", a)]


def test_the_docs_show_commands():
    commands = [c for doc in DOCS for line in shell_lines(doc.read_text())
                if (c := toolkit_command(line))]
    assert len(commands) >= 30


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_command_in_the_docs_exists_with_its_flags(doc):
    unknown = []
    for line in shell_lines(doc.read_text()):
        if (command := toolkit_command(line)) is None:
            continue
        how, args = command
        text = help_text(how)
        unknown += [f"{' '.join(how)} {flag}" for flag in flags(args)
                    if not re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", text)]
    assert unknown == [], unknown


def test_the_check_sees_a_wrong_flag_and_a_missing_module():
    how, args = toolkit_command("python -m runtimes ART a.wav --fromat srt")
    assert "--fromat" not in help_text(how) and flags(args) == ["--fromat"]
    with pytest.raises(AssertionError, match="no module"):
        help_text(("-m", "runtimes.nonexistent"))
