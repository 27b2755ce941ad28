"""``--bundle``: make an artifact deployable as a service on another machine.

Adds ``serve/`` to the artifact before its manifest is written (so ``verify`` covers it):

- ``requirements.txt``: the runtime's and the server's packages, pinned to the versions this
  artifact was exported and validated with;
- ``app/``: the toolkit's ``runtimes`` package (pure Python; it holds the artifact contract,
  so nothing of ``exporters`` or ``bench`` is needed), the very code that validated the
  artifact;
- ``serve.sh``: the serve command, run from anywhere;
- ``Dockerfile``: an image that serves the artifact on port 8000;
- ``README.md``: how to build, run and call it.
"""

from __future__ import annotations

import platform
import shutil
from importlib import metadata
from pathlib import Path

import exporters
import runtimes
from exporters.targets.base import Target
from runtimes.errors import ToolkitError

BUNDLE_DIR = "serve"
#: What every served artifact needs besides its runtime: audio decoding and VAD
#: (faster-whisper, av), the tokenizer, threadpoolctl (runtimes.audio.features), the web stack.
SERVE_PACKAGES = ("numpy", "tokenizers", "faster-whisper", "av", "threadpoolctl", "fastapi",
                  "uvicorn", "python-multipart", "prometheus-client")
#: GPU packages are not installed on CPU machines: their pins come from ENVIRONMENT.md.
KNOWN_PINS = {"onnxruntime-gpu": "1.31.1", "tensorrt-cu13": "10.16.1.11"}
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
CUDA_BASE_IMAGE = "nvidia/cuda:12.9.1-cudnn-runtime-ubuntu24.04"


def pinned(package: str) -> str:
    """``package==version`` of the installed version (local tags such as ``+cpu`` dropped)."""
    try:
        version = metadata.version(package)
    except metadata.PackageNotFoundError:
        if package not in KNOWN_PINS:
            raise ToolkitError(f"--bundle needs {package} installed to pin its version") from None
        version = KNOWN_PINS[package]
    return f"{package}=={version.split('+')[0]}"


def requirements(target: Target, device: str) -> str:
    packages = [*target.runtime_packages(device), *SERVE_PACKAGES]
    lines = [f"# {target.name} runtime + server, pinned to the versions this artifact was "
             f"validated with (python {platform.python_version()}).", *map(pinned, packages)]
    return "\n".join(lines) + "\n"


def dockerfile(target: Target, device: str) -> str:
    python = ".".join(platform.python_version_tuple()[:2])
    needs_cpu_torch = "torch" in target.runtime_packages(device) and device == "cpu"
    extra = f" --extra-index-url {TORCH_CPU_INDEX}" if needs_cpu_torch else ""
    if device == "cuda":
        base = [f"FROM {CUDA_BASE_IMAGE}",
                "RUN apt-get update && apt-get install -y --no-install-recommends python3 "
                "python3-venv && rm -rf /var/lib/apt/lists/* && python3 -m venv /opt/venv",
                'ENV PATH="/opt/venv/bin:$PATH"']
    else:
        base = [f"FROM python:{python}-slim"]
    return "\n".join([
        "# Build from the artifact directory:  docker build -f serve/Dockerfile -t whisper-serve .",
        "# Run:  docker run -p 8000:8000 -e WHISPER_API_KEY=... whisper-serve",
        *base,
        "ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1",
        "WORKDIR /srv",
        "COPY serve/requirements.txt /srv/requirements.txt",
        f"RUN pip install{extra} -r /srv/requirements.txt",
        "COPY serve/app /srv/app",
        "COPY . /srv/model",
        "ENV PYTHONPATH=/srv/app",
        "RUN useradd --system --uid 10001 whisper",
        "USER whisper",
        "EXPOSE 8000",
        'HEALTHCHECK CMD python -c "import urllib.request; '
        "urllib.request.urlopen('http://127.0.0.1:8000/health')\"",
        "# 0.0.0.0 inside the container; set WHISPER_API_KEY to require a key.",
        'CMD ["python", "-m", "runtimes.serve", "/srv/model", "--host", "0.0.0.0", "--port", "8000"]',
        "",
    ])


SERVE_SH = """#!/bin/sh
# Serve this artifact: serve/serve.sh [--port 8000] [--host 127.0.0.1] [--api-key KEY] ...
# Needs the packages of serve/requirements.txt (pip install -r serve/requirements.txt).
here=$(cd "$(dirname "$0")" && pwd)
PYTHONPATH="$here/app${PYTHONPATH:+:$PYTHONPATH}" exec python -m runtimes.serve "$here/.." "$@"
"""


def readme(target: Target, device: str) -> str:
    return f"""# Serving this {target.name} artifact

Without Docker (Python {".".join(platform.python_version_tuple()[:2])}):

    pip install -r serve/requirements.txt
    serve/serve.sh --port 8000            # 127.0.0.1 only; --host 0.0.0.0 --api-key KEY to expose

With Docker (from this directory):

    docker build -f serve/Dockerfile -t whisper-serve .
    docker run -p 8000:8000 -e WHISPER_API_KEY=secret whisper-serve

Call it with any OpenAI client:

    from openai import OpenAI
    client = OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="secret")
    client.audio.transcriptions.create(model="whisper-1", file=open("speech.wav", "rb"))

`serve/app` is the toolkit's `runtimes` package ({exporters.__version__}) that validated this
artifact; `artifact.json` records the package versions and the parity check. Device: {device}.
"""


def write_bundle(artifact_dir: Path, target: Target, device: str) -> None:
    """Write ``serve/`` into ``artifact_dir`` (the export's temp dir)."""
    out = Path(artifact_dir) / BUNDLE_DIR
    app = out / "app"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    source = Path(runtimes.__file__).parent
    shutil.copytree(source, app / source.name, ignore=ignore)
    (out / "requirements.txt").write_text(requirements(target, device))
    (out / "Dockerfile").write_text(dockerfile(target, device))
    (out / "README.md").write_text(readme(target, device))
    script = out / "serve.sh"
    script.write_text(SERVE_SH)
    script.chmod(0o755)
