"""``--compress`` steps on the tiny random Whisper: each method exports through a real target,
the artifact holds what the method did (zeros, dropped layers, K values per tensor), the
manifest records the steps, the real sparsity, the compressed sizes and the cost against the
uncompressed reference, and a bad step fails before any work."""

from __future__ import annotations

import numpy as np
import pytest

import runtimes
from exporters.api import export
from exporters.compress import CompressionStep, kept_layers
from exporters.targets.base import ExportOptions
from runtimes.artifact import read_manifest
from runtimes.errors import OptionError


def _onnx_matrices(artifact) -> list[np.ndarray]:
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(artifact / "encoder.onnx"))
    return [numpy_helper.to_array(t) for t in model.graph.initializer
            if len(t.dims) == 2 and t.dims[0] * t.dims[1] >= 64 * 64]


@pytest.mark.parametrize("spec", ["prune-unstructured:0.5", "cluster:16"])
def test_weight_methods_reach_the_artifact(spec, tiny_random, tmp_path, jfk):
    out = tmp_path / "a"
    export(str(tiny_random), ExportOptions("onnx", "fp32", threads=2, compress=(spec,)), out,
           parity_audio=jfk, log=lambda _: None)
    manifest = read_manifest(out)
    compression = manifest.extra["compression"]
    assert manifest.options["compress"] == compression["steps"] == [
        str(CompressionStep.parse(spec))]
    assert manifest.parity["passed"]  # the artifact against the compressed model
    cost = compression["vs_uncompressed"]  # and what compression cost, reported
    assert cost["encoder_rel_error"] > 0 and 0 <= cost["token_agreement"] <= 1
    matrices = _onnx_matrices(out)
    assert matrices
    if spec.startswith("prune"):
        assert compression["layer_sparsity"] == pytest.approx(0.5, abs=0.01)
        zeros = sum(int((m == 0).sum()) for m in matrices) / sum(m.size for m in matrices)
        assert zeros > 0.3  # the layer weights, half zero, are most of the encoder's
    else:  # every Linear of the 2 encoder layers (6 each) and more: K values at most
        assert sum(len(np.unique(m)) <= 16 for m in matrices) >= 12
    assert compression["compressed_weight_bytes"] < compression[
        "uncompressed_model_compressed_bytes"]


def test_dropped_decoder_layers_make_a_smaller_model_every_runtime_loads(tiny_random, tmp_path,
                                                                         jfk):
    out = tmp_path / "a"
    export(str(tiny_random), ExportOptions("ctranslate2", threads=2,
                                           compress=("drop-decoder-layers:1",)), out,
           parity_audio=jfk, log=lambda _: None)
    manifest = read_manifest(out)
    assert manifest.model["decoder_layers"] == 1 and manifest.parity["passed"]
    assert manifest.extra["compression"]["decoder_layers"] == 1
    with runtimes.load(out, runtimes.RuntimeOptions(threads=2)) as model:
        assert model.transcribe([jfk])[0].tokens  # it decodes


def test_bad_steps_fail_before_any_work(tiny_random, tmp_path):
    for spec, message in (("prune-unstructured:1.5", "SPARSITY in 0..1"),
                          ("cluster:1", "K an integer in 2..256"),
                          ("prune-heads:0.25", "not one of: prune-unstructured")):
        with pytest.raises(OptionError, match=message):
            ExportOptions("onnx", compress=(spec,))
    with pytest.raises(OptionError, match="has 2 decoder layers; keep fewer"):
        export(str(tiny_random), ExportOptions("onnx", compress=("drop-decoder-layers:2",)),
               tmp_path / "x", log=lambda _: None)
    assert list(tmp_path.iterdir()) == []
    assert kept_layers(4, 2) == [0, 3] and kept_layers(6, 3) == [0, 2, 5]
