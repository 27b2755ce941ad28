"""Activation importance for structured pruning (``prune-heads:F:activation``,
``prune-ffn:F:activation``): how much each attention head and feed-forward channel writes
into the residual stream on the user's calibration audio, rather than what its weights
could write (magnitude, exporters.structured).

The encoder sees each calibration window; the decoder is teacher-forced on the
uncompressed model's own greedy transcript of it (exporters.teacher), so decoder heads are
scored on the text the model is meant to produce. A head's score is the mean norm of its
output-projection contribution ``W_o[:, head] @ x_head`` over real positions (the decoder's
right padding excluded); a channel's is its mean absolute activation times the norm of its
fc2 column. Scores come back in the order of exporters.structured's modules.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from exporters.teacher import BATCH, decoder_batch


@dataclass
class Scores:
    """Per attention module (structured's order) a tensor of head scores, per layer a
    tensor of feed-forward channel scores."""

    heads: list = field(default_factory=list)
    channels: list = field(default_factory=list)


def activation_scores(model, features: np.ndarray, labels: list[tuple[int, list[int]]],
                      log: Callable[[str], None] = print) -> Scores:
    """Score every head and channel of ``model`` on ``features`` (N, n_mels, 3000) with
    the decoder fed ``labels`` (exporters.teacher.pseudo_labels)."""
    import torch

    from exporters.structured import attention_modules, ffn_layers

    named_attentions, named_layers = attention_modules(model), ffn_layers(model)
    attentions = [module for _, module in named_attentions]
    layers = [layer for _, layer in named_layers]
    sums = Scores([torch.zeros(a.num_heads, dtype=torch.float64) for a in attentions],
                  [torch.zeros(layer.fc1.out_features, dtype=torch.float64) for layer in layers])
    counts = [0] * (len(attentions) + len(layers))
    mask: dict[str, torch.Tensor] = {}  # positions of the forward pass now running

    def valid(x, decoder: bool):
        return x[mask["decoder"]] if decoder else x.flatten(0, 1)

    def head_hook(i: int, attention, decoder: bool):
        def hook(_, inputs):
            x = valid(inputs[0], decoder)  # (positions, heads * head_dim)
            heads, dim = attention.num_heads, attention.head_dim
            weight = attention.out_proj.weight.detach().reshape(-1, heads, dim)
            for h in range(heads):  # one head at a time: large-v3's 20 at once is GBs
                contribution = x[:, h * dim:(h + 1) * dim] @ weight[:, h, :].T
                sums.heads[i][h] += torch.linalg.norm(contribution, dim=1).double().sum()
            counts[i] += x.shape[0]
        return hook

    def channel_hook(i: int, layer, decoder: bool):
        def hook(_, inputs):
            x = valid(inputs[0], decoder)  # (positions, channels)
            norms = torch.linalg.norm(layer.fc2.weight.detach(), dim=0)
            sums.channels[i] += (x.abs().double().sum(dim=0) * norms.double())
            counts[len(attentions) + i] += x.shape[0]
        return hook

    handles = [a.out_proj.register_forward_pre_hook(head_hook(i, a, n.startswith("decoder")))
               for i, (n, a) in enumerate(named_attentions)]
    handles += [layer.fc2.register_forward_pre_hook(channel_hook(i, layer, n.startswith("decoder")))
                for i, (n, layer) in enumerate(named_layers)]
    try:
        _forward_all(model, features, labels, mask, log)
    finally:
        for handle in handles:
            handle.remove()
    heads = [(s / max(c, 1)).float() for s, c in zip(sums.heads, counts)]
    channels = [(s / max(c, 1)).float() for s, c in zip(sums.channels, counts[len(attentions):])]
    return Scores([v / v.mean() for v in heads], [v / v.mean() for v in channels])


def _forward_all(model, features: np.ndarray, labels: list[tuple[int, list[int]]],
                 mask: dict, log: Callable[[str], None]) -> None:
    """Teacher-forced forward passes over all windows, BATCH at a time, for the hooks;
    ``mask["decoder"]`` tells them which decoder positions are real tokens."""
    import torch

    eot = model.generation_config.eos_token_id
    with torch.no_grad():
        for start in range(0, len(features), BATCH):
            rows = list(range(start, min(start + BATCH, len(features))))
            ids, _, mask["decoder"] = decoder_batch(labels, rows, eot)
            model(input_features=torch.from_numpy(features[rows]), decoder_input_ids=ids)
            log(f"      importance: {rows[-1] + 1}/{len(features)} windows")
