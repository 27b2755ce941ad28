"""Whisper as two exportable graphs: an encoder that also projects the cross-attention
keys/values, and one decoder step with a self-attention KV cache.

Every graph target (ONNX, OpenVINO, TorchScript, TensorRT) exports these instead of
transformers' modules: plain tensors in and out, one decoder for the first and later steps
(past length may be 0), every weight stored once. The token embedding is kept transposed,
(d_model, vocab), and used both by the lookup (a column gather) and by the output
projection (a MatMul), so quantisers see one matrix that both ops share. OpenVINO asks for
the other layout (``vocab_major``): it keeps MatMul weights as (vocab, d_model) and would
otherwise fold a transposed second copy of the matrix into the IR.
"""

from __future__ import annotations

import torch
from torch import nn

from runtimes.artifacts.graph_spec import GraphSpec


def load_model(hf_dir):
    """The fp32 transformers model every graph target traces, in eval mode (pruned layers
    included: runtimes.artifacts.checkpoint)."""
    from runtimes.artifacts.checkpoint import load_whisper

    return load_whisper(hf_dir)


def spec_of(model) -> GraphSpec:
    """The graphs' spec; per-layer head counts only where pruning made them differ."""
    c = model.config
    layers = model.model.decoder.layers
    heads = [layer.self_attn.num_heads for layer in layers]
    cross = [layer.encoder_attn.num_heads for layer in layers]
    uniform = set(heads + cross) == {c.decoder_attention_heads}
    return GraphSpec(c.num_mel_bins, c.decoder_layers, c.decoder_attention_heads, c.d_model,
                     c.vocab_size, decoder_heads=None if uniform else heads,
                     cross_heads=None if uniform else cross)


def _heads(x: torch.Tensor, attention) -> torch.Tensor:
    """(B, T, H*Dh) -> (B, H, T, Dh), H the attention module's own head count (pruning may
    leave layers with different counts)."""
    b, t, _ = x.shape
    return x.view(b, t, attention.num_heads, attention.head_dim).transpose(1, 2)


def _merge(x: torch.Tensor) -> torch.Tensor:
    """(B, H, T, Dh) -> (B, T, H*Dh)."""
    b, h, t, dh = x.shape
    return x.transpose(1, 2).reshape(b, t, h * dh)


class EncoderGraph(nn.Module):
    """input_features (B, n_mels, 3000) -> encoder output and cross K/V per decoder layer."""

    def __init__(self, model) -> None:
        super().__init__()
        self.encoder = model.model.encoder
        self.cross = nn.ModuleList(layer.encoder_attn for layer in model.model.decoder.layers)

    def forward(self, input_features: torch.Tensor) -> tuple[torch.Tensor, ...]:
        hidden = self.encoder(input_features).last_hidden_state
        out = [hidden]
        for attn in self.cross:
            out += [_heads(attn.k_proj(hidden), attn), _heads(attn.v_proj(hidden), attn)]
        return tuple(out)


class DecoderStepGraph(nn.Module):
    """One decoding step: tokens (B, T) after P cached positions -> logits of the last
    position (B, vocab) and the self-attention cache extended to P + T.

    ``cache_lengths`` (B,) says how many of the P cached positions each row really has: its
    cache is right-aligned and the first P - length positions are padding, masked out. So
    rows at different points of their transcripts share one step (the server adds new
    requests to a running batch); with every length = P it is the plain step.
    """

    def __init__(self, model, vocab_major: bool = False) -> None:
        super().__init__()
        decoder = model.model.decoder
        self.layers = decoder.layers
        self.layer_norm = decoder.layer_norm
        self.positions = decoder.embed_positions.weight
        self.vocab_major = vocab_major
        weight = decoder.embed_tokens.weight.detach()
        self.embed = nn.Parameter(weight.clone() if vocab_major else weight.t().contiguous())
        self.scale = (model.config.d_model // model.config.decoder_attention_heads) ** -0.5

    def _attend(self, q, k, v, mask=None):
        scores = torch.matmul(q * self.scale, k.transpose(-1, -2))
        if mask is not None:
            scores = scores + mask
        return _merge(torch.matmul(torch.softmax(scores, dim=-1), v))

    def forward(self, input_ids: torch.Tensor, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        n = len(self.layers)
        past, cross, lengths = inputs[: 2 * n], inputs[2 * n: 4 * n], inputs[4 * n]
        b, t = input_ids.shape
        p = past[0].shape[2]
        steps = torch.arange(t, device=input_ids.device)
        pos = lengths[:, None] + steps[None, :]  # (B, T) positions in each row's sequence
        x = self._lookup(input_ids.reshape(-1)).reshape(b, t, -1)
        x = x + self.positions.index_select(0, pos.reshape(-1)).reshape(b, t, -1)
        keys = torch.arange(p + t, device=input_ids.device)
        padding = keys[None, None, :] < (p - lengths)[:, None, None]  # (B, 1, P+T)
        future = keys[None, None, :] > (steps + p)[None, :, None]  # (1, T, P+T)
        # In the compute dtype: a float32 mask promoted fp16 scores to float32, and the
        # product with fp16 values then failed ("expected scalar type Float but found Half").
        mask = torch.where(padding | future, float("-inf"), 0.0).to(x.dtype)[:, None]
        present = []
        for i, layer in enumerate(self.layers):
            h = layer.self_attn_layer_norm(x)
            sa = layer.self_attn
            k = torch.cat([past[2 * i], _heads(sa.k_proj(h), sa)], dim=2)
            v = torch.cat([past[2 * i + 1], _heads(sa.v_proj(h), sa)], dim=2)
            present += [k, v]
            x = x + sa.out_proj(self._attend(_heads(sa.q_proj(h), sa), k, v, mask))
            h = layer.encoder_attn_layer_norm(x)
            ca = layer.encoder_attn
            q = _heads(ca.q_proj(h), ca)
            x = x + ca.out_proj(self._attend(q, cross[2 * i], cross[2 * i + 1]))
            h = layer.final_layer_norm(x)
            x = x + layer.fc2(layer.activation_fn(layer.fc1(h)))
        last = self.layer_norm(x[:, -1, :])
        logits = torch.matmul(last, self.embed.t() if self.vocab_major else self.embed)
        return (logits, *present)

    def _lookup(self, ids: torch.Tensor) -> torch.Tensor:
        if self.vocab_major:
            return self.embed.index_select(0, ids)
        return self.embed.index_select(1, ids).t()


class AlignmentGraph(DecoderStepGraph):
    """A teacher-forced decoder pass for word timestamps: tokens (B, T) and the cross K/V
    -> logits of every position (B, T, vocab) and the alignment heads' cross-attention
    weights (B, heads, T, frames). A graph of its own, exported only when asked, so the
    decoder step stays exactly as fast."""

    def __init__(self, model, heads: list[list[int]]) -> None:
        super().__init__(model)
        self.heads = [(int(layer), int(head)) for layer, head in heads]

    def forward(self, input_ids: torch.Tensor, *cross: torch.Tensor) -> tuple[torch.Tensor, ...]:
        b, t = input_ids.shape
        steps = torch.arange(t, device=input_ids.device)
        x = self._lookup(input_ids.reshape(-1)).reshape(b, t, -1)
        x = x + self.positions.index_select(0, steps)[None]
        mask = torch.where(steps[None, :] > steps[:, None], float("-inf"), 0.0).to(x.dtype)
        weights = []
        for i, layer in enumerate(self.layers):
            h = layer.self_attn_layer_norm(x)
            sa = layer.self_attn
            q, k, v = (_heads(proj(h), sa) for proj in (sa.q_proj, sa.k_proj, sa.v_proj))
            x = x + sa.out_proj(self._attend(q, k, v, mask))
            h = layer.encoder_attn_layer_norm(x)
            ca = layer.encoder_attn
            q = _heads(ca.q_proj(h), ca)
            probs = torch.softmax(torch.matmul(q * self.scale, cross[2 * i].transpose(-1, -2)), -1)
            weights.append(probs)
            x = x + ca.out_proj(_merge(torch.matmul(probs, cross[2 * i + 1])))
            h = layer.final_layer_norm(x)
            x = x + layer.fc2(layer.activation_fn(layer.fc1(h)))
        logits = torch.matmul(self.layer_norm(x), self.embed)
        attention = torch.stack([weights[layer][:, head] for layer, head in self.heads], 1)
        return logits, attention


def export_alignment_onnx(model, out_dir, heads: list[list[int]], opset: int = 17) -> None:
    """``out_dir``/alignment.onnx (fp32, whatever the artifact's precision: attention
    weights steer the word times and the graph runs once per window)."""
    import warnings
    from pathlib import Path

    spec = spec_of(model)
    _, step_inputs = dummy_inputs(spec)
    ids, cross = step_inputs[0], step_inputs[1 + 2 * spec.n_layers: 1 + 4 * spec.n_layers]
    names = spec.cross_names()
    axes = {"input_ids": {0: "batch", 1: "tokens"}, "logits": {0: "batch", 1: "tokens"},
            "attention": {0: "batch", 2: "tokens"}, **{n: {0: "batch"} for n in names}}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            AlignmentGraph(model, heads).eval(), (ids, *cross),
            str(Path(out_dir) / "alignment.onnx"), dynamo=False, opset_version=opset,
            input_names=["input_ids", *names], output_names=["logits", "attention"],
            dynamic_axes=axes)


def alignment_heads(hf_dir) -> list[list[int]]:
    """The source's alignment heads (its generation_config.json), which --word-timestamps
    needs."""
    import json
    from pathlib import Path

    from exporters.errors import ExportError

    heads = json.loads((Path(hf_dir) / "generation_config.json").read_text()).get(
        "alignment_heads")
    if not heads:
        raise ExportError(f"{hf_dir}: generation_config.json has no alignment_heads, which "
                          "--word-timestamps needs")
    return heads


def export_alignment(model, hf_dir, out_dir, opset: int = 17) -> None:
    """alignment.onnx with the source's alignment heads, for the targets that take
    --word-timestamps through ONNX."""
    export_alignment_onnx(model, out_dir, alignment_heads(hf_dir), opset)


def dummy_inputs(spec: GraphSpec, batch: int = 2, tokens: int = 3, past: int = 2):
    """Example inputs for tracing (sizes are made dynamic by the exporter)."""
    ids = torch.full((batch, tokens), 50257, dtype=torch.long)
    past_kv = [torch.zeros(spec.kv_shape(n, batch, past)) for n in spec.input_names()
               if n.startswith("past")]
    cross_kv = [torch.zeros(spec.kv_shape(n, batch, spec.n_audio_ctx))
                for n in spec.cross_names()]
    features = torch.zeros(batch, spec.n_mels, spec.n_frames)
    lengths = torch.full((batch,), past, dtype=torch.long)
    return features, (ids, *past_kv, *cross_kv, lengths)


def write_graph_files(spec: GraphSpec, hf_dir, out_dir, precision: str, **target_fields) -> None:
    """What every graph artifact carries besides its graphs: ``graph.json`` (the spec with
    its precision, language ids and ``target_fields`` such as ``opset`` or ``traced_on``)
    and the source's ``generation_config.json`` (suppress lists, end token) for the shared
    decoding loop."""
    import json
    import shutil
    from pathlib import Path

    from runtimes.artifacts.graph_spec import is_multilingual
    from runtimes.decode.languages import language_tokens

    hf_dir, out_dir = Path(hf_dir), Path(out_dir)
    gen = json.loads((hf_dir / "generation_config.json").read_text())
    vocab = json.loads((hf_dir / "config.json").read_text())["vocab_size"]
    found = gen.get("lang_to_id") or (language_tokens(hf_dir / "tokenizer.json")
                                      if is_multilingual(vocab) else {})
    languages = {k.strip("<|>"): v for k, v in found.items()}
    # cache_lengths: the decoder step takes per-row cache lengths (see DecoderStepGraph).
    spec.with_(precision=precision, languages=languages, cache_lengths=True,
               **target_fields).write(out_dir)
    shutil.copy2(hf_dir / "generation_config.json", out_dir)


def export_onnx(model, out_dir, opset: int = 17, vocab_major: bool = False) -> GraphSpec:
    """Trace the two graphs to ``out_dir``/{encoder,decoder}.onnx (torch.onnx, external
    data near 2 GB); return their spec. ONNX is also OpenVINO's way in (``vocab_major``:
    see the module docstring)."""
    import warnings
    from pathlib import Path

    out_dir = Path(out_dir)
    spec = spec_of(model)
    features, step_inputs = dummy_inputs(spec)
    batch = {0: "batch"}
    large = sum(p.numel() for p in model.parameters()) * 4 > 2 * 1024**3 * 0.9
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation and tracer notes
        torch.onnx.export(
            EncoderGraph(model).eval(), (features,), str(out_dir / "encoder.onnx"),
            dynamo=False, opset_version=opset, input_names=["input_features"],
            output_names=["encoder_output", *spec.cross_names()],
            dynamic_axes={"input_features": batch, "encoder_output": batch,
                          **{n: batch for n in spec.cross_names()}},
            external_data=large,
        )
        axes = {"input_ids": {0: "batch", 1: "tokens"}, "logits": batch}
        for name in spec.input_names()[1:]:
            axes[name] = {0: "batch", 2: "past"} if name.startswith("past") else batch
        for name in spec.present_names():
            axes[name] = {0: "batch", 2: "total"}
        torch.onnx.export(
            DecoderStepGraph(model, vocab_major).eval(), step_inputs, str(out_dir / "decoder.onnx"),
            dynamo=False, opset_version=opset, input_names=spec.input_names(),
            output_names=["logits", *spec.present_names()], dynamic_axes=axes,
            external_data=large,
        )
    return spec
