"""Command-line options the toolkit's command lines share (``python -m runtimes``,
``python -m runtimes.serve``, ``python -m bench`` and the comparison)."""

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


def add_long_form_arguments(p: argparse.ArgumentParser) -> None:
    """--long-form and --no-condition-on-previous-text (DecodingOptions.long_form and
    condition_on_previous_text), for every command line that decodes."""
    p.add_argument("--long-form", default="vad", choices=("vad", "sequential"),
                   help="recordings over 30 s: vad = speech windows decoded in parallel "
                   "(default); sequential = openai/whisper's seeking from segment to segment, "
                   "each window prompted with the text before it (implies timestamps)")
    p.add_argument("--no-condition-on-previous-text", action="store_true",
                   help="sequential: do not prompt a window with the text before it")
