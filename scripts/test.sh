#!/usr/bin/env bash
# Set up (once) and run the whole test suite: unit, parity on a tiny random Whisper, and the
# real tier on bundled tiny.en with the speech clips in ../shared/data/speech.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh tests/unit -x`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
ruff check exporters runtimes bench tests
python -m pytest "$@"
