"""Dynamic int8 ONNX graphs in which each clip is scaled on its own, so a clip's result
cannot depend on the other clips of its batch.

Why: ONNX Runtime's dynamic quantisation (``quantize_dynamic``) puts one
``DynamicQuantizeLinear`` before each group of MatMuls: one scale and zero point for the
whole input tensor, every clip of the batch together. A clip's rounding then depends on its
neighbours' loudest activation, and its transcript on who shares its batch (18 of 56 `en`
clips of tiny.en decoded differently alone and in batches of 8), so the server could not
batch the fastest CPU artifact.

Two rewrites, one per graph:

- ``per_clip`` (the encoder): the whole graph runs one clip at a time inside a ``Scan``.
  Its kernels are ONNX Runtime's fused ones, unchanged, so a clip's encoding is exactly
  what it is alone, at the same speed (on the CPU the encoder is no cheaper per window in a
  batch).
- ``per_item`` (the decoder, whose steps must stay batched: one row per clip per step):
  each ``DynamicQuantizeLinear`` is replaced by its own arithmetic over every axis but the
  batch axis (range widened to hold 0, scale range / 255, zero point round(-min / scale),
  q = clip(round(x / scale) + zero point, 0, 255)). ``MatMulInteger`` takes one
  activation zero point per tensor in ONNX Runtime, so it runs without one (as ONNX
  Runtime's fused ``MatMulIntegerToFloat``, scaled by the weight columns' scales), and the
  clips' zero points are subtracted after: ``sum_k (q - z) w = sum_k q w - z sum_k w``,
  with ``sum_k w`` of each column a constant; then each clip is scaled by its own scale.
"""

from __future__ import annotations

import numpy as np

#: A floor for a clip's scale: an all-zero input quantises to its zero point, not to NaN.
MIN_SCALE = 1e-12


class _Builder:
    """New nodes and constants for one quantised input, named after it."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.nodes: list = []

    def name(self, suffix: str) -> str:
        return f"{self.prefix}_{suffix}"

    def const(self, suffix: str, value, dtype=np.float32) -> str:
        from onnx import helper, numpy_helper

        array = np.asarray(value, dtype)
        self.nodes.append(helper.make_node("Constant", [], [self.name(suffix)],
                                           value=numpy_helper.from_array(array, self.name(suffix))))
        return self.name(suffix)

    def op(self, op_type: str, inputs: list[str], output: str | None = None, **attrs) -> str:
        from onnx import helper

        out = output or self.name(f"{op_type.lower()}{len(self.nodes)}")
        self.nodes.append(helper.make_node(op_type, inputs, [out], **attrs))
        return out


def per_clip(model):
    """``model`` (an ``onnx.ModelProto`` whose inputs and outputs all lead with the batch
    axis) run one clip at a time inside a ``Scan`` over that axis: a new model whose
    outputs are the clips' outputs stacked.

    Why: every operator inside then sees one clip, so ONNX Runtime's dynamic int8 kernels
    (``DynamicQuantizeMatMul``: one scale over their input) scale each clip on its own. A
    clip's result is exactly what it is in a batch of one, at the same speed: the kernels
    are unchanged, and on the CPU the encoder is no cheaper per window in a batch (on a GPU
    it is, and this gives that up).
    """
    from onnx import helper, numpy_helper

    graph = model.graph
    rename = {v.name: f"clip/{v.name}" for v in (*graph.input, *graph.output)}
    nodes = []
    for node in graph.node:
        copy = type(node)()
        copy.CopyFrom(node)
        for names in (copy.input, copy.output):
            for k, name in enumerate(names):
                names[k] = rename.get(name, name)
        nodes.append(copy)
    axis = numpy_helper.from_array(np.array([0], np.int64), "clip/axis")
    body_inputs, body_outputs = [], []
    for value in graph.input:
        nodes.insert(0, helper.make_node("Unsqueeze", [f"{value.name}/one", "clip/axis"],
                                         [rename[value.name]]))
        body_inputs.append(_without_batch(value, f"{value.name}/one"))
    for value in graph.output:
        nodes.append(helper.make_node("Squeeze", [rename[value.name], "clip/axis"],
                                      [f"{value.name}/one"]))
        body_outputs.append(_without_batch(value, f"{value.name}/one"))
    body = helper.make_graph(nodes, "one_clip", body_inputs, body_outputs,
                             [*graph.initializer, axis])
    scan = helper.make_node("Scan", [v.name for v in graph.input],
                            [v.name for v in graph.output], body=body,
                            num_scan_inputs=len(graph.input))
    outer = helper.make_graph([scan], graph.name, list(graph.input), list(graph.output))
    return helper.make_model(outer, opset_imports=list(model.opset_import),
                             ir_version=model.ir_version)


def _without_batch(value, name: str):
    """``value``'s type info under ``name``, its leading (batch) axis dropped."""
    from onnx import helper

    tensor = value.type.tensor_type
    dims = [d.dim_param or d.dim_value for d in tensor.shape.dim][1:]
    return helper.make_tensor_value_info(name, tensor.elem_type, dims)


def per_item(model, ranks: dict[str, int] | None = None) -> int:
    """Rewrite every ``DynamicQuantizeLinear`` of ``model`` (an ``onnx.ModelProto``, edited in
    place) to quantise each batch item on its own; returns how many were rewritten.
    ``ranks``: tensor ranks (``tensor_ranks`` of the graph before quantisation, where
    ONNX's shape inference cannot see through ONNX Runtime's own operators, as in int4's
    MatMulNBits); by default inferred from ``model``.

    Raises:
        ValueError: a quantised input used other than by ``MatMulInteger``, or of unknown
            rank (a graph this rewrite does not know).
    """
    from onnx import helper

    graph = model.graph
    ranks = tensor_ranks(model) if ranks is None else ranks
    consts = {t.name: t for t in graph.initializer}
    count = 0
    for node in [n for n in graph.node if n.op_type == "DynamicQuantizeLinear"]:
        x, quantized, scale = node.input[0], node.output[0], node.output[1]
        matmuls = [n for n in graph.node if quantized in n.input]
        if not matmuls or any(m.op_type != "MatMulInteger" for m in matmuls):
            raise ValueError(f"{quantized} feeds {[m.op_type for m in matmuls]}, not MatMulInteger")
        if ranks.get(x, 0) < 2:
            raise ValueError(f"{x}: rank unknown or below 2, so no batch axis to keep")
        build = _Builder(quantized)
        offsets = _quantize(build, x, quantized, scale, list(range(1 - ranks[x], 0)))
        _replace(graph, node, build.nodes)
        for matmul in matmuls:
            _rescale(graph, matmul, scale, offsets, consts)
        count += 1
    if count and not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return count


def tensor_ranks(model) -> dict[str, int]:
    """Rank of every tensor of ``model`` whose shape ONNX's shape inference finds."""
    from onnx import shape_inference

    graph = shape_inference.infer_shapes(model).graph
    values = [*graph.value_info, *graph.input, *graph.output]
    return {v.name: len(v.type.tensor_type.shape.dim) for v in values
            if v.type.tensor_type.HasField("shape")}


def _weight(matmul, consts: dict) -> np.ndarray:
    """A MatMulInteger's int8 weight less its zero point, as int64."""
    from onnx import numpy_helper

    weight = numpy_helper.to_array(consts[matmul.input[1]]).astype(np.int64)
    if len(matmul.input) > 3 and matmul.input[3]:
        weight = weight - numpy_helper.to_array(consts[matmul.input[3]]).astype(np.int64)
    return weight


def _quantize(build: _Builder, x: str, quantized: str, scale: str, axes: list[int]) -> str:
    """Nodes giving ``quantized`` (u8, x's shape) and ``scale`` (one per batch item, reduced
    over ``axes``) as ``DynamicQuantizeLinear`` computes them; returns the items' float zero
    points."""
    from onnx import TensorProto

    zero, top = build.const("zero", 0.0), build.const("top", 255.0)
    low = build.op("Min", [build.op("ReduceMin", [x], axes=axes, keepdims=1), zero])
    high = build.op("Max", [build.op("ReduceMax", [x], axes=axes, keepdims=1), zero])
    spread = build.op("Div", [build.op("Sub", [high, low]), top])
    build.op("Max", [spread, build.const("floor", MIN_SCALE)], scale)
    offsets = build.op("Clip", [build.op("Round", [build.op("Neg", [
        build.op("Div", [low, scale])])]), zero, top])
    shifted = build.op("Add", [build.op("Round", [build.op("Div", [x, scale])]), offsets])
    build.op("Cast", [build.op("Clip", [shifted, zero, top])], quantized, to=TensorProto.UINT8)
    return offsets


def _one(graph) -> str:
    """The graph's float constant 1 (an initializer, added once)."""
    from onnx import numpy_helper

    name = "per_clip_one"
    if not any(t.name == name for t in graph.initializer):
        graph.initializer.append(numpy_helper.from_array(np.ones((), np.float32), name))
    return name


def _replace(graph, node, new: list) -> None:
    at = list(graph.node).index(node)
    graph.node.remove(node)
    for k, item in enumerate(new):
        graph.node.insert(at + k, item)


def _rescale(graph, matmul, scale: str, offsets: str, consts: dict) -> None:
    """``matmul`` -> Cast -> Mul(scale x column scales) replaced by ONNX Runtime's
    MatMulIntegerToFloat with an activation scale of 1 and no activation zero point (the
    column scales only: one fused kernel, items independent), then the items' zero points'
    share subtracted and each item scaled by its own scale."""
    from onnx import helper, numpy_helper

    cast = next(n for n in graph.node if n.op_type == "Cast" and n.input[0] == matmul.output[0])
    final = next(n for n in graph.node if n.op_type == "Mul" and cast.output[0] in n.input)
    product = next(i for i in final.input if i != cast.output[0])
    scales_mul = next(n for n in graph.node if n.output[0] == product)
    columns = next(i for i in scales_mul.input if i != scale)
    out = final.output[0]
    points = ["", matmul.input[3] if len(matmul.input) > 3 else ""]  # 0: subtracted after
    new = [helper.make_node("MatMulIntegerToFloat",
                            [matmul.input[0], matmul.input[1], _one(graph), columns, *points],
                            [f"{out}_columns"], domain="com.microsoft")]
    column_scales = numpy_helper.to_array(consts[columns]).astype(np.float64)
    sums = (_weight(matmul, consts).sum(0) * column_scales).astype(np.float32)
    graph.initializer.append(numpy_helper.from_array(sums, f"{out}_colsums"))
    new += [helper.make_node("Mul", [offsets, f"{out}_colsums"], [f"{out}_shift"]),
            helper.make_node("Sub", [f"{out}_columns", f"{out}_shift"], [f"{out}_centred"]),
            helper.make_node("Mul", [f"{out}_centred", scale], [out])]
    _replace(graph, final, new)
    for node in (matmul, cast, scales_mul):
        graph.node.remove(node)
