"""``--compress`` steps on the tiny random Whisper: each method exports through a real target,
the artifact holds what the method did (zeros, dropped layers, K values per tensor), the
manifest records the steps, the real sparsity, the compressed sizes and the cost against the
uncompressed reference, and a bad step fails before any work. Heads and feed-forward channels
removed with their weights leave layers of different shapes, which every target that holds
them exports and runs (and the others refuse before any work)."""

from __future__ import annotations

import numpy as np
import pytest

import runtimes
from exporters.api import export
from exporters.compress import kept_layers
from exporters.options import CompressionStep, ExportOptions
from runtimes.artifacts.manifest import read_manifest
from runtimes.errors import OptionError
from tests.conftest import SPEECH


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
                          ("prune-heads:1", "FRACTION in 0..1"),
                          ("distill:2", "not one of: prune-unstructured")):
        with pytest.raises(OptionError, match=message):
            ExportOptions("onnx", compress=(spec,))
    with pytest.raises(OptionError, match="has 2 decoder layers; keep fewer"):
        export(str(tiny_random), ExportOptions("onnx", compress=("drop-decoder-layers:2",)),
               tmp_path / "x", log=lambda _: None)
    assert list(tmp_path.iterdir()) == []
    assert kept_layers(4, 2) == [0, 3] and kept_layers(6, 3) == [0, 2, 5]


@pytest.mark.parametrize("target", ["onnx", "openvino", "torchscript", "ctranslate2"])
def test_removed_heads_and_channels_leave_per_layer_shapes_every_target_runs(
        target, tiny_random, tmp_path, jfk, en_clips):
    steps = ("prune-ffn:0.25",) if target == "ctranslate2" else ("prune-heads:0.25",
                                                                 "prune-ffn:0.25")
    out = tmp_path / "a"
    export(str(tiny_random), ExportOptions(target, threads=2, compress=steps), out,
           parity_audio=jfk, log=lambda _: None)
    manifest = read_manifest(out)
    compression = manifest.extra["compression"]
    assert manifest.parity["passed"]  # the graphs/weights compute what the pruned model does
    shapes = compression["layer_shapes"]
    assert manifest.model["layer_shapes"] == shapes
    assert sum(shapes["encoder_ffn"] + shapes["decoder_ffn"]) == 0.75 * 4 * 128
    assert all(width % 16 == 0 for width in shapes["encoder_ffn"] + shapes["decoder_ffn"])
    if target != "ctranslate2":  # a quarter of the 24 heads gone, not evenly: layers differ
        heads = shapes["encoder_heads"] + shapes["decoder_heads"] + shapes["cross_heads"]
        assert sum(heads) == 18 and len(set(heads)) > 1
    assert compression["parameters"] < compression["uncompressed_parameters"]
    clips = [jfk, *(SPEECH / row["path"] for row in en_clips[:2])]
    with runtimes.load(out, runtimes.RuntimeOptions(threads=2, trust_code=True)) as model:
        alone = [model.transcribe([clip])[0].tokens for clip in clips]
        assert [r.tokens for r in model.transcribe(clips)] == alone  # batched = alone


def test_pruned_checkpoint_shapes_are_read_from_the_weights(tiny_random, tmp_path):
    from exporters.compress import compress
    from runtimes.artifacts.checkpoint import LayerShapes, layer_shapes, load_whisper

    steps = (CompressionStep.parse("prune-heads:0.5"), CompressionStep.parse("prune-ffn:0.5"))
    info = compress(tiny_random, steps, tmp_path / "c")
    shapes = layer_shapes(tmp_path / "c")
    assert shapes.to_dict() == info["layer_shapes"] and shapes != layer_shapes(tiny_random)
    model = load_whisper(tmp_path / "c")  # transformers' from_pretrained would refuse it
    assert LayerShapes.of_model(model) == shapes
    assert min(shapes.encoder_heads + shapes.decoder_heads + shapes.cross_heads) >= 1


@pytest.mark.parametrize("target,step,message", [
    ("ctranslate2", "prune-heads:0.25", "one head count for every layer"),
    ("ggml", "prune-ffn:0.25", "whisper.cpp sizes every layer")])
def test_targets_that_cannot_hold_pruned_shapes_refuse_before_any_work(
        target, step, message, tiny_random, tmp_path):
    with pytest.raises(OptionError, match=message):
        export(str(tiny_random), ExportOptions(target, compress=(step,)), tmp_path / "x",
               log=lambda _: None)
    assert list(tmp_path.iterdir()) == []


def test_distilled_student_learns_the_teachers_transcripts(tiny_random, tmp_path, jfk):
    """--distill: the compressed decoder fine-tuned on real audio labelled by the
    uncompressed model; the loss falls, the manifest says on what and how long."""
    from exporters.calibration import CalibrationSet
    from tests.conftest import MANIFEST

    audio = CalibrationSet(MANIFEST, ("formats",), max_windows=2)
    out = tmp_path / "a"
    export(str(tiny_random), ExportOptions("onnx", threads=2, compress=("drop-decoder-layers:1",),
                                           distill=audio, distill_steps=20), out,
           parity_audio=jfk, log=lambda _: None)
    manifest = read_manifest(out)
    distilled = manifest.extra["compression"]["distill"]
    assert distilled["windows"] == 2 and distilled["steps"] == 20
    assert distilled["audio"]["subsets"] == ["formats"]
    assert distilled["loss_last"] < 0.98 * distilled["loss_first"]  # 24.5 -> 23.5 measured
    assert manifest.parity["passed"]  # the artifact computes what the fine-tuned model does


def _rig_a_bias_only_head(hf_dir, out_dir):
    """A copy of the checkpoint whose encoder layer 0 head 0 has zero value weights and a
    large value bias: its weights' magnitude is 0, yet it writes W_o @ bias at every
    position. Returns the copy and the rigged bias."""
    import torch

    from runtimes.artifacts.checkpoint import load_whisper

    model = load_whisper(hf_dir)
    attention = model.model.encoder.layers[0].self_attn
    dim = attention.head_dim
    with torch.no_grad():
        attention.v_proj.weight[:dim] = 0
        attention.v_proj.bias[:dim] = torch.linspace(1.0, 2.0, dim) * 10
    model.save_pretrained(out_dir)
    for path in hf_dir.iterdir():
        if path.is_file() and not (out_dir / path.name).exists():
            (out_dir / path.name).write_bytes(path.read_bytes())
    return out_dir, attention.v_proj.bias[:dim].detach().clone()


def test_activation_importance_keeps_what_writes_on_audio_where_magnitude_cannot_see_it(
        tiny_random, tmp_path):
    """prune-heads:F:activation ranks heads by what they write on the calibration audio:
    a head with no value weights but a large value bias has magnitude 0 (removed first by
    the default) and one of the largest outputs (kept by :activation)."""
    import torch

    from exporters.calibration import CalibrationSet
    from exporters.compress import compress
    from runtimes.artifacts.checkpoint import load_whisper
    from tests.conftest import MANIFEST

    rigged, bias = _rig_a_bias_only_head(tiny_random, tmp_path / "rigged")
    audio = CalibrationSet(MANIFEST, ("formats",), max_windows=2)
    kept = {}
    for how in ("magnitude", "activation"):
        step = CompressionStep.parse(f"prune-heads:0.04:{how}")  # 1 of the 24 heads
        info = compress(rigged, (step,), tmp_path / how, audio, log=lambda _: None)
        assert sum(info["layer_shapes"]["encoder_heads"] + info["layer_shapes"]["decoder_heads"]
                   + info["layer_shapes"]["cross_heads"]) == 23
        v_bias = load_whisper(tmp_path / how).model.encoder.layers[0].self_attn.v_proj.bias
        kept[how] = any(torch.equal(v_bias[i:i + len(bias)], bias)
                        for i in range(0, len(v_bias), len(bias)))
        assert ("importance" in info) == (how == "activation")
    assert kept == {"magnitude": False, "activation": True}
    assert info["importance"]["windows"] == 2 and info["importance"]["audio"]["subsets"] == [
        "formats"]


def test_activation_importance_needs_calibration_audio_and_records_it(tiny_random, tmp_path,
                                                                      jfk):
    from exporters.calibration import CalibrationSet
    from tests.conftest import MANIFEST

    steps = ("prune-heads:0.25:activation", "prune-ffn:0.25:activation")
    with pytest.raises(OptionError, match="measures importance on audio: pass --calibration"):
        export(str(tiny_random), ExportOptions("onnx", compress=steps), tmp_path / "x",
               log=lambda _: None)
    assert list(tmp_path.iterdir()) == []
    audio = CalibrationSet(MANIFEST, ("formats",), max_windows=2)
    out = tmp_path / "a"
    export(str(tiny_random), ExportOptions("onnx", threads=2, calibration=audio, compress=steps),
           out, parity_audio=jfk, log=lambda _: None)
    manifest = read_manifest(out)
    assert manifest.options["compress"] == list(steps) and manifest.parity["passed"]
    assert manifest.options["calibration"]["subsets"] == ["formats"]
    shapes = manifest.extra["compression"]["layer_shapes"]
    assert sum(shapes["encoder_heads"] + shapes["decoder_heads"] + shapes["cross_heads"]) == 18
    assert manifest.extra["compression"]["importance"]["windows"] == 2


@pytest.mark.parametrize("target", ["ctranslate2", "openvino", "torchscript"])
def test_weight_methods_export_to_every_cpu_target(target, tiny_random, tmp_path, jfk):
    """Unstructured pruning, clustering and a dropped decoder layer in one export per target
    (ONNX: above; whisper.cpp cannot hold the random model: tests/slow): the artifact
    computes what the compressed model does and decodes batched as alone."""
    steps = ("prune-unstructured:0.5", "cluster:16", "drop-decoder-layers:1")
    out = tmp_path / "a"
    export(str(tiny_random), ExportOptions(target, threads=2, compress=steps), out,
           parity_audio=jfk, log=lambda _: None)
    manifest = read_manifest(out)
    assert manifest.parity["passed"] and manifest.options["compress"] == [
        "prune-unstructured:0.5:l1", "cluster:16", "drop-decoder-layers:1"]
    assert manifest.model["decoder_layers"] == 1
    with runtimes.load(out, runtimes.RuntimeOptions(threads=2, trust_code=True)) as model:
        clips = [jfk, jfk]
        alone = model.transcribe([jfk])[0].tokens
        assert alone and [r.tokens for r in model.transcribe(clips)] == [alone, alone]
