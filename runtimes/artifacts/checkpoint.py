"""Transformers Whisper checkpoints whose layers may have been pruned: per-layer head counts
and feed-forward widths read from the weights, not from the config.

``--compress prune-heads`` and ``prune-ffn`` remove weights, so a layer may keep 5 of 6
heads and another 3, or 1152 of 1536 feed-forward channels. transformers' config has one
head count and one width per stack and ``from_pretrained`` refuses the smaller tensors, yet
its attention modules run any head count once ``num_heads`` says it (queries are viewed
with ``-1`` heads, keys and values with ``num_heads``, the head size stays). So the
reference model, every graph exporter and the PyTorch runtime load such a checkpoint here:
the model is built from the config, each layer is cut to its tensors' shapes, then the
weights are loaded. An unpruned checkpoint goes straight to ``from_pretrained``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from runtimes.errors import ArtifactError


@dataclass(frozen=True)
class LayerShapes:
    """Per-layer attention heads and feed-forward widths of a Whisper checkpoint.

    Attributes:
        head_dim: the size of one head (d_model / the config's heads; pruning keeps it).
        encoder_heads, encoder_ffn: per encoder layer.
        decoder_heads, cross_heads, decoder_ffn: per decoder layer (self-attention,
            cross-attention, feed-forward).
    """

    head_dim: int
    encoder_heads: tuple[int, ...]
    encoder_ffn: tuple[int, ...]
    decoder_heads: tuple[int, ...]
    cross_heads: tuple[int, ...]
    decoder_ffn: tuple[int, ...]

    @classmethod
    def of_config(cls, config: dict[str, Any]) -> LayerShapes:
        """What the config alone says: every layer alike."""
        enc, dec = config["encoder_layers"], config["decoder_layers"]
        heads = config["decoder_attention_heads"]
        return cls(config["d_model"] // config["encoder_attention_heads"],
                   (config["encoder_attention_heads"],) * enc, (config["encoder_ffn_dim"],) * enc,
                   (heads,) * dec, (heads,) * dec, (config["decoder_ffn_dim"],) * dec)

    @classmethod
    def of_model(cls, model) -> LayerShapes:
        """The shapes of a loaded (possibly pruned) transformers model."""
        encoder, decoder = model.model.encoder.layers, model.model.decoder.layers
        return cls(encoder[0].self_attn.head_dim,
                   tuple(layer.self_attn.num_heads for layer in encoder),
                   tuple(layer.fc1.out_features for layer in encoder),
                   tuple(layer.self_attn.num_heads for layer in decoder),
                   tuple(layer.encoder_attn.num_heads for layer in decoder),
                   tuple(layer.fc1.out_features for layer in decoder))

    def pruned(self, config: dict[str, Any]) -> bool:
        """Whether any layer differs from what the config says."""
        return self != LayerShapes.of_config(config)

    def reshaped(self, config: dict[str, Any]) -> list[str]:
        """What pruning changed against the config: "heads", "ffn", both or neither."""
        uniform = LayerShapes.of_config(config)
        heads = ("encoder_heads", "decoder_heads", "cross_heads")
        return [kind for kind, names in (("heads", heads), ("ffn", ("encoder_ffn", "decoder_ffn")))
                if any(getattr(self, n) != getattr(uniform, n) for n in names)]

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def layer_shapes(hf_dir: Path) -> LayerShapes:
    """The checkpoint's per-layer shapes, read from its safetensors headers (the config's
    where the weights are in another format, which pruning never writes)."""
    config = json.loads((Path(hf_dir) / "config.json").read_text())
    shapes = _weight_shapes(Path(hf_dir))
    uniform = LayerShapes.of_config(config)
    if not shapes:
        return uniform
    width = lambda name, default: shapes.get(name, (default,))[0]  # noqa: E731
    head_dim = uniform.head_dim

    def heads(prefix: str, default: int) -> int:
        return width(f"{prefix}.q_proj.weight", default * head_dim) // head_dim

    enc = [f"model.encoder.layers.{i}" for i in range(config["encoder_layers"])]
    dec = [f"model.decoder.layers.{i}" for i in range(config["decoder_layers"])]
    return LayerShapes(
        head_dim,
        tuple(heads(f"{p}.self_attn", h) for p, h in zip(enc, uniform.encoder_heads)),
        tuple(width(f"{p}.fc1.weight", w) for p, w in zip(enc, uniform.encoder_ffn)),
        tuple(heads(f"{p}.self_attn", h) for p, h in zip(dec, uniform.decoder_heads)),
        tuple(heads(f"{p}.encoder_attn", h) for p, h in zip(dec, uniform.cross_heads)),
        tuple(width(f"{p}.fc1.weight", w) for p, w in zip(dec, uniform.decoder_ffn)))


def _weight_shapes(hf_dir: Path) -> dict[str, tuple[int, ...]]:
    """name -> shape of every tensor in the checkpoint's safetensors files (headers only)."""
    from safetensors import safe_open

    files = sorted(hf_dir.glob("*.safetensors"))
    shapes: dict[str, tuple[int, ...]] = {}
    for path in files:
        try:
            with safe_open(str(path), "pt") as f:
                for name in f.keys():  # noqa: SIM118 (safe_open is not iterable)
                    shapes[name] = tuple(f.get_slice(name).get_shape())
        except Exception:  # noqa: BLE001 - SafetensorError: a cut or corrupt file
            return {}  # the config's shapes; loading the weights then names the damage
    return shapes


def keep_heads(attention, kept: list[int]) -> None:
    """Cut a transformers attention module to the heads ``kept`` (in that order): the rows
    of the query/key/value projections and the columns of the output projection."""
    import torch

    rows = torch.cat([torch.arange(h * attention.head_dim, (h + 1) * attention.head_dim)
                      for h in kept])
    for name in ("q_proj", "k_proj", "v_proj"):
        setattr(attention, name, _linear_rows(getattr(attention, name), rows))
    attention.out_proj = _linear_columns(attention.out_proj, rows)
    attention.num_heads = len(kept)


def keep_channels(layer, kept: list[int]) -> None:
    """Cut a transformers encoder or decoder layer's feed-forward block to the channels
    ``kept``: rows of fc1, columns of fc2."""
    import torch

    index = torch.as_tensor(kept, dtype=torch.long)
    layer.fc1 = _linear_rows(layer.fc1, index)
    layer.fc2 = _linear_columns(layer.fc2, index)


def _linear_rows(linear, rows):
    import torch

    new = torch.nn.Linear(linear.in_features, len(rows), bias=linear.bias is not None)
    with torch.no_grad():
        new.weight.copy_(linear.weight[rows])
        if linear.bias is not None:
            new.bias.copy_(linear.bias[rows])
    return new


def _linear_columns(linear, columns):
    import torch

    new = torch.nn.Linear(len(columns), linear.out_features, bias=linear.bias is not None)
    with torch.no_grad():
        new.weight.copy_(linear.weight[:, columns])
        if linear.bias is not None:
            new.bias.copy_(linear.bias)
    return new


def cut_to(model, shapes: LayerShapes) -> None:
    """Cut every layer of a model built from the config to ``shapes`` (its first heads and
    channels: the weights loaded next replace them)."""
    for layer, heads, width in zip(model.model.encoder.layers, shapes.encoder_heads,
                                   shapes.encoder_ffn):
        _cut_layer(layer, {"self_attn": heads}, width)
    for layer, heads, cross, width in zip(model.model.decoder.layers, shapes.decoder_heads,
                                          shapes.cross_heads, shapes.decoder_ffn):
        _cut_layer(layer, {"self_attn": heads, "encoder_attn": cross}, width)


def _cut_layer(layer, heads: dict[str, int], width: int) -> None:
    for name, count in heads.items():
        if getattr(layer, name).num_heads != count:
            keep_heads(getattr(layer, name), list(range(count)))
    if layer.fc1.out_features != width:
        keep_channels(layer, list(range(width)))


def load_whisper(hf_dir: Path, dtype=None):
    """The transformers Whisper model in ``hf_dir`` in eval mode, pruned layers included;
    ``dtype`` as from_pretrained's. ArtifactError when the weights do not fit the config."""
    from transformers import WhisperForConditionalGeneration

    hf_dir = Path(hf_dir)
    kwargs = {} if dtype is None else {"dtype": dtype}
    config = json.loads((hf_dir / "config.json").read_text())
    shapes = layer_shapes(hf_dir)
    if not shapes.pruned(config):
        return WhisperForConditionalGeneration.from_pretrained(hf_dir, **kwargs).eval()
    return _load_pruned(hf_dir, shapes, dtype)


def _load_pruned(hf_dir: Path, shapes: LayerShapes, dtype):
    """Build the model on the meta device (no memory, no random initialisation: large-v3's
    1.5 B parameters would cost seconds and 6 GB for nothing), cut it to ``shapes`` and
    assign the checkpoint's tensors."""
    import torch
    from safetensors.torch import load_file
    from transformers import GenerationConfig, WhisperConfig, WhisperForConditionalGeneration
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # building from a config notes its defaults ("loss_type")
    try:
        with torch.device("meta"):
            model = WhisperForConditionalGeneration(WhisperConfig.from_pretrained(hf_dir))
            cut_to(model, shapes)
    finally:
        hf_logging.set_verbosity(level)
    state: dict = {}
    for path in sorted(hf_dir.glob("*.safetensors")):
        state.update(load_file(str(path)))
    missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
    model.tie_weights()
    empty = [name for name, tensor in [*model.named_parameters(), *model.named_buffers()]
             if tensor.is_meta]
    if unexpected or set(missing) - {"proj_out.weight"} or empty:
        raise ArtifactError(f"{hf_dir}: the weights do not fit the config (missing "
                            f"{sorted(set(missing) | set(empty))[:3]}, unexpected "
                            f"{sorted(unexpected)[:3]})")
    if (hf_dir / "generation_config.json").is_file():
        model.generation_config = GenerationConfig.from_pretrained(hf_dir)
    return model.to(dtype or torch.float32).eval()
