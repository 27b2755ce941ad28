"""The runtime comparison from a checkout: the same as ``whisper-exporters compare`` and
``python -m bench.compare_cli`` (``bench/compare_cli.py`` is the command line)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.compare_cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
