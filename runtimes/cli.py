"""Command-line options that ``python -m runtimes`` and ``python -m runtimes.serve`` share."""

from __future__ import annotations

import argparse


def add_integrity_arguments(p: argparse.ArgumentParser) -> None:
    """--expect-digest and --skip-checksums (shared with ``python -m runtimes.serve``)."""
    p.add_argument("--expect-digest", metavar="sha256:HEX",
                   help="refuse the artifact unless its manifest has this digest (the export "
                   "prints it): pins exactly what is deployed")
    p.add_argument("--skip-checksums", action="store_true",
                   help="check files' presence and size only, not their sha256 (trusted hot "
                   "paths; measured: 0.11-0.17 s for the 153 MB tiny.en ONNX fp32 artifact)")
