"""``--compress`` on real tiny.en: mild settings keep the JFK clip's words through a target
that holds them, the artifact computes what the compressed model does (parity passed) and
the manifest reports the cost against the uncompressed model: unstructured pruning then
clustering (which keeps the pruned zeros) in whisper.cpp's q8_0, and feed-forward channels
removed by activation importance on calibration audio in ONNX int8. Heads removed by
activation (also JFK-exact at 5% on the PyTorch reference) and dropped decoder layers (no
setting keeps tiny.en's words) are measured, not tested here: README "Compression methods
on tiny.en"; the random model takes every method through every target in tests/parity."""

from __future__ import annotations

import pytest

import runtimes
from bench.metrics import normalizer
from exporters.api import export
from exporters.calibration import CalibrationSet
from exporters.compress import CompressionStep
from exporters.targets.base import ExportOptions
from runtimes.artifact import read_manifest
from tests.conftest import MANIFEST
from tests.slow.conftest import THREADS
from tests.slow.test_real_tiny_en import JFK

#: (target, precision, steps): settings measured to keep JFK's words on real tiny.en
#: (this file's cases; the README's table has what stronger settings cost)
CASES = [
    ("ggml", "q8_0", ("prune-unstructured:0.3", "cluster:256")),
    ("onnx", "int8", ("prune-ffn:0.0625:activation",)),
]


@pytest.mark.parametrize("target,precision,steps", CASES, ids=lambda v: "+".join(v)
                         if isinstance(v, tuple) else v)
def test_mild_compression_keeps_jfk(target, precision, steps, tmp_path, jfk):
    if target == "ggml":
        pytest.importorskip("_pywhispercpp", reason="the 'ggml' extra is not installed")
    audio = (CalibrationSet(MANIFEST, ("longform",), max_windows=8)
             if any(s.endswith(":activation") for s in steps) else None)
    out = tmp_path / "a"
    export("bundled:tiny.en", ExportOptions(target, precision, threads=THREADS,
                                            calibration=audio, compress=steps),
           out, parity_audio=jfk, log=lambda _: None)
    manifest = read_manifest(out)
    compression = manifest.extra["compression"]
    assert manifest.parity["passed"] and manifest.options["compress"] == [
        str(CompressionStep.parse(step)) for step in steps]
    cost = compression["vs_uncompressed"]
    print(f"{target} {precision} {'+'.join(steps)}: token agreement with the uncompressed "
          f"model {cost['token_agreement']:.2f}")
    assert normalizer("en")(cost["artifact_text"]) == normalizer("en")(JFK)
    with runtimes.load(out, runtimes.RuntimeOptions(threads=THREADS)) as model:
        assert normalizer("en")(model.transcribe([jfk])[0].text) == normalizer("en")(JFK)
    if "prune" in steps[0] and target == "onnx":
        assert compression["parameters"] < compression["uncompressed_parameters"]
