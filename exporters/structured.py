"""Structured pruning with the weights removed: attention heads (``prune-heads``) and
feed-forward channels (``prune-ffn``), so the model is smaller and every dense kernel has
less to do, unlike unstructured pruning's zeros.

Importance is magnitude by default (no audio): a head's is the Frobenius norm of its value
rows times that of its output-projection columns (what it can write into the residual
stream), a feed-forward channel's the norm of its fc1 row times that of its fc2 column; or,
with ``:activation``, what each writes on calibration audio (exporters.importance).
Scores are divided by their module's mean, then ranked over the whole model, so layers lose
different numbers of heads or channels (per-layer shapes: runtimes.artifacts.checkpoint) and no
module loses its last head or more than it has. Feed-forward widths are kept in units of
128 channels (16 on models narrower than 1024), which int4 group quantisers need.
"""

from __future__ import annotations

from runtimes.artifacts.checkpoint import keep_channels, keep_heads


def attention_modules(model) -> list[tuple[str, object]]:
    """(name, module) of every attention module: encoder self, decoder self and cross."""
    out = []
    for i, layer in enumerate(model.model.encoder.layers):
        out.append((f"encoder.{i}.self_attn", layer.self_attn))
    for i, layer in enumerate(model.model.decoder.layers):
        out += [(f"decoder.{i}.self_attn", layer.self_attn),
                (f"decoder.{i}.encoder_attn", layer.encoder_attn)]
    return out


def ffn_layers(model) -> list[tuple[str, object]]:
    """(name, layer) of every encoder then decoder layer (each has one feed-forward block)."""
    layers = [(f"encoder.{i}", layer) for i, layer in enumerate(model.model.encoder.layers)]
    return layers + [(f"decoder.{i}", layer) for i, layer in enumerate(model.model.decoder.layers)]


def _head_scores(attention):
    import torch

    dim, heads = attention.head_dim, attention.num_heads
    v = attention.v_proj.weight.detach().reshape(heads, dim, -1)
    o = attention.out_proj.weight.detach().reshape(-1, heads, dim).transpose(0, 1)
    scores = torch.linalg.norm(v.flatten(1), dim=1) * torch.linalg.norm(o.flatten(1), dim=1)
    return scores / scores.mean()


def _removed(scores: list, fraction: float, floor: list[int], unit: list[int]) -> list[int]:
    """How many of each module's items (heads, channels) to remove: the lowest ``fraction``
    of all normalised scores, each module keeping at least ``floor`` and removing whole
    ``unit``s."""
    import torch

    everything = torch.cat(scores)
    count = int(round(fraction * everything.numel()))
    if count == 0:
        return [0] * len(scores)
    threshold = torch.sort(everything).values[count - 1]
    out = []
    for values, least, step in zip(scores, floor, unit):
        below = int((values <= threshold).sum())
        out.append(min(int(round(below / step)) * step, values.numel() - least))
    return out


def prune_heads(model, fraction: float, scores: list | None = None) -> dict[str, int]:
    """Remove ``fraction`` of all attention heads (lowest normalised score first: magnitude,
    or ``scores`` per module in attention_modules' order); the alignment heads of removed
    heads are dropped and the others renumbered. Returns heads removed per module name
    (non-zero only)."""
    modules = attention_modules(model)
    if scores is None:
        scores = [_head_scores(attention) for _, attention in modules]
    removed = _removed(scores, fraction, [1] * len(modules), [1] * len(modules))
    kept_cross: dict[int, list[int]] = {}
    for (name, attention), values, drop in zip(modules, scores, removed):
        kept = sorted(values.argsort(descending=True)[: attention.num_heads - drop].tolist())
        if name.endswith("encoder_attn"):
            kept_cross[int(name.split(".")[1])] = kept
        if drop:
            keep_heads(attention, kept)
    _renumber_alignment_heads(model, kept_cross)
    return {name: drop for (name, _), drop in zip(modules, removed) if drop}


def _renumber_alignment_heads(model, kept_cross: dict[int, list[int]]) -> None:
    heads = getattr(model.generation_config, "alignment_heads", None)
    if heads:
        model.generation_config.alignment_heads = [
            [layer, kept_cross[layer].index(head)] for layer, head in heads
            if head in kept_cross[layer]]


def prune_ffn(model, fraction: float, scores: list | None = None) -> dict[str, int]:
    """Remove ``fraction`` of all feed-forward channels (lowest normalised score first:
    magnitude, or ``scores`` per layer in ffn_layers' order; whole units). Returns channels
    removed per layer name (non-zero only)."""
    import torch

    layers = ffn_layers(model)
    if scores is None:
        scores = []
        for _, layer in layers:
            values = (torch.linalg.norm(layer.fc1.weight.detach(), dim=1)
                      * torch.linalg.norm(layer.fc2.weight.detach(), dim=0))
            scores.append(values / values.mean())
    units = [128 if layer.fc1.out_features >= 1024 else 16 for _, layer in layers]
    removed = _removed(scores, fraction, units, units)
    for (_, layer), values, drop in zip(layers, scores, removed):
        if drop:
            kept = values.argsort(descending=True)[: layer.fc1.out_features - drop]
            keep_channels(layer, sorted(kept.tolist()))
    return {name: drop for (name, _), drop in zip(layers, removed) if drop}
