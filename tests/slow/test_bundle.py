"""``--bundle``: the serve/ files, the bundled code serving on its own, requirements resolving.

The Dockerfile cannot be built here (no Docker, no network); what can be checked is: the
files are listed and verified in the manifest, the bundled code (not this checkout) serves
the artifact through serve/serve.sh, and pip resolves the pinned requirements.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from exporters.api import export
from exporters.options import ExportOptions
from runtimes.artifacts.manifest import read_manifest, verify
from runtimes.serve.launch import start_server
from tests.slow.test_serve import JFK_WORDS


@pytest.fixture(scope="module")
def bundled(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bundle") / "tiny.en-onnx-int8"
    export("bundled:tiny.en", ExportOptions("onnx", "int8", threads=2), out, bundle=True,
           log=lambda _: None)
    return out


def test_bundle_files_are_in_the_manifest(bundled):
    serve = bundled / "serve"
    for name in ("requirements.txt", "Dockerfile", "README.md", "serve.sh",
                 "app/runtimes/serve/app.py", "app/runtimes/artifacts/manifest.py"):
        assert (serve / name).is_file(), name
    assert sorted(p.name for p in (serve / "app").iterdir()) == ["runtimes"]  # nothing else
    listed = {f.path for f in read_manifest(bundled).files}
    assert "serve/Dockerfile" in listed and "serve/app/runtimes/transcript/pipeline.py" in listed
    verify(bundled, read_manifest(bundled), checksums=True)
    requirements = (serve / "requirements.txt").read_text().splitlines()
    pins = [line for line in requirements if not line.startswith("#")]
    assert all("==" in line for line in pins) and any(p.startswith("onnxruntime==") for p in pins)
    assert not list(serve.rglob("__pycache__"))
    dockerfile = (serve / "Dockerfile").read_text()
    assert "COPY serve/requirements.txt" in dockerfile and '"runtimes.serve"' in dockerfile


def _blocked(tmp_path: Path) -> Path:
    """Packages named exporters and bench that refuse to import, ahead of this checkout's
    on the path: the bundled service must run without either."""
    for name in ("exporters", "bench"):
        (tmp_path / "blocked" / name).mkdir(parents=True)
        (tmp_path / "blocked" / name / "__init__.py").write_text(
            f"raise ImportError('{name} is not part of a served bundle')\n")
    return tmp_path / "blocked"


def test_bundled_runtimes_alone_serve_the_artifact(bundled, jfk, tmp_path):
    script = bundled / "serve" / "serve.sh"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "PYTHONPATH": str(_blocked(tmp_path))}
    probe = subprocess.run(
        ["python", "-c", "import runtimes; print(runtimes.__file__); import exporters"], env={
            **env, "PYTHONPATH": f"{bundled / 'serve' / 'app'}:{env['PYTHONPATH']}"},
        capture_output=True, text=True, cwd=tmp_path)
    assert probe.stdout.strip().startswith(str(bundled / "serve" / "app"))
    assert "exporters is not part of a served bundle" in probe.stderr
    with start_server(bundled, "--threads", "2", command=[str(script)], env=env) as server:
        response = httpx.post(server.url + "/v1/audio/transcriptions", timeout=120,
                              files={"file": (jfk.name, jfk.read_bytes())},
                              data={"model": "whisper-1"})
        assert response.status_code == 200, response.text
        from bench.metrics import normalizer

        assert normalizer("en")(response.json()["text"]) == JFK_WORDS


def test_pinned_requirements_resolve(bundled, tmp_path):
    report = tmp_path / "report.json"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
         "--report", str(report), "-r", str(bundled / "serve" / "requirements.txt")],
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert report.stat().st_size > 0
