"""Per-row dynamic int8 (exporters.onnx_per_clip) on a small real graph quantised by ONNX
Runtime's own ``quantize_dynamic``, run by ONNX Runtime: each row's output is the same in
any batch, close to the float product, and more so than one scale per batch; and the
``--int8-activations`` option is recorded where it applies and refused elsewhere."""

from __future__ import annotations

import numpy as np
import pytest

from exporters.onnx_per_clip import per_clip, per_item
from exporters.options import ExportOptions
from exporters.recorded import int8_activations
from exporters.registry import get
from runtimes.errors import OptionError

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

K, N = 64, 48


def _float_model(tmp_path):
    """x (batch, tokens, K) -> GELU-like(x @ W1 + b) @ W2: two MatMuls, one of them fed by a
    one-sided (non-negative) activation, as a Transformer's feed-forward is."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.standard_normal((K, N)).astype(np.float32) / 8, "w1")
    w2 = numpy_helper.from_array(rng.standard_normal((N, K)).astype(np.float32) / 8, "w2")
    bias = numpy_helper.from_array(rng.standard_normal(N).astype(np.float32), "b")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w1"], ["h0"]),
         helper.make_node("Add", ["h0", "b"], ["h1"]),
         helper.make_node("Relu", ["h1"], ["h"]),
         helper.make_node("MatMul", ["h", "w2"], ["y"])],
        "ffn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", "t", K])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", "t", K])],
        [w1, w2, bias])
    path = tmp_path / "float.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                                ir_version=8), str(path))
    return path


def _quantized(tmp_path, rewrite=None):
    """The model quantised by ``quantize_dynamic``, then ``rewrite`` (per_clip or per_item),
    as an ONNX Runtime session."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    source, out = _float_model(tmp_path), tmp_path / "int8.onnx"
    quantize_dynamic(str(source), str(out), weight_type=QuantType.QInt8, per_channel=True)
    model = onnx.load(str(out))
    if rewrite is per_item:
        assert per_item(model) == 2
    elif rewrite is per_clip:
        model = per_clip(model)
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def _inputs():
    """Three clips of 5 tokens; the third 40x louder, as a loud neighbour in a batch."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 5, K)).astype(np.float32)
    x[2] *= 40
    return x


@pytest.mark.parametrize("rewrite", [per_clip, per_item], ids=["per_clip", "per_item"])
def test_a_clips_output_is_the_same_in_any_batch_and_what_it_was_alone(tmp_path, rewrite):
    x = _inputs()
    before = _quantized(tmp_path)
    session = _quantized(tmp_path, rewrite)
    together = session.run(None, {"x": x})[0]
    for i in range(3):
        alone = session.run(None, {"x": x[i:i + 1]})[0][0]
        assert np.array_equal(alone, together[i])  # bit for bit
        was = before.run(None, {"x": x[i:i + 1]})[0][0]
        if rewrite is per_clip:  # the same kernels on the same clip
            assert np.array_equal(alone, was)
        else:  # the same arithmetic, the zero point applied after the product
            assert np.allclose(alone, was, rtol=1e-4, atol=1e-4 * np.abs(was).max())


def test_one_scale_per_batch_lets_a_loud_neighbour_change_a_clip(tmp_path):
    """Why: with ``quantize_dynamic``'s scale over the batch, the quiet clip is rounded on the
    loud one's scale (what made 18 of 56 `en` clips change in batches)."""
    x = _inputs()
    exact = ort.InferenceSession(str(_float_model(tmp_path)),
                                 providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    session = _quantized(tmp_path)
    alone, together = session.run(None, {"x": x[:1]})[0][0], session.run(None, {"x": x})[0][0]
    assert not np.array_equal(alone, together)
    error = np.linalg.norm(together - exact[0]) / np.linalg.norm(exact[0])
    own = _quantized(tmp_path, per_item).run(None, {"x": x})[0][0]
    own_error = np.linalg.norm(own - exact[0]) / np.linalg.norm(exact[0])
    assert error > 0.05 and own_error < 0.03, (error, own_error)


def test_a_quantised_input_feeding_an_unknown_node_is_refused(tmp_path):
    from onnx import helper
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out = tmp_path / "int8.onnx"
    quantize_dynamic(str(_float_model(tmp_path)), str(out), weight_type=QuantType.QInt8)
    model = onnx.load(str(out))
    quantized = next(n for n in model.graph.node if n.op_type == "DynamicQuantizeLinear").output[0]
    model.graph.node.append(helper.make_node("Identity", [quantized], ["stray"]))
    with pytest.raises(ValueError, match="not MatMulInteger"):
        per_item(model)


def test_the_option_is_recorded_for_onnx_int8_and_refused_where_it_changes_nothing():
    assert int8_activations(get("onnx"), "int8", ExportOptions("onnx", "int8")) == {
        "int8_activations": "clip"}
    assert get("onnx").batch_invariant("int8", ExportOptions("onnx", "int8"))
    batch = ExportOptions("onnx", "int8", int8_activations="batch")
    assert not get("onnx").batch_invariant("int8", batch)
    assert int8_activations(get("onnx"), "fp32", ExportOptions("onnx")) == {}
    with pytest.raises(OptionError, match="applies to onnx int8 and int4; ctranslate2"):
        int8_activations(get("ctranslate2"), "int8_float32",
                          ExportOptions("ctranslate2", "int8", int8_activations="batch"))
    with pytest.raises(OptionError, match="'tensor' is not one of: clip, batch"):
        ExportOptions("onnx", "int8", int8_activations="tensor")
