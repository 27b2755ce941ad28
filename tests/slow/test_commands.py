"""``pip install .`` gives the console command, and every subcommand prints its help from
the installed copy (not the checkout)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.commands import COMMANDS

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def test_pip_install_gives_whisper_exporters_and_each_command_prints_help(tmp_path):
    # a copy of the project: setuptools writes build/ beside the sources it installs
    source = tmp_path / "project"
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("exporters", "runtimes", "bench"):
        shutil.copytree(ROOT / name, source / name, ignore=skip)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    target = tmp_path / "site"
    # --no-deps: the dependencies are this environment's (the lock); what is checked is the
    # package's own files and its entry point
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--no-build-isolation", "--target", str(target), str(source)], check=True)
    command = target / "bin" / "whisper-exporters"
    assert command.is_file()
    env = {**os.environ, "PYTHONPATH": str(target)}
    where = subprocess.run([sys.executable, "-c", "import bench; print(bench.__file__)"],
                           env=env, cwd=tmp_path, capture_output=True, text=True, check=True)
    assert where.stdout.startswith(str(target))  # the installed copy answers
    for name in ("", *COMMANDS):
        done = subprocess.run([str(command), *([name] if name else []), "--help"], env=env,
                              cwd=tmp_path, capture_output=True, text=True)
        assert done.returncode == 0 and "usage:" in done.stdout, (name, done.stderr[-2000:])
