"""Compression steps applied to the reference model before any target converts it
(``--compress METHOD[:ARGS]``, repeatable, in order).

A step changes the transformers checkpoint; the compressed checkpoint is written to a
directory the target converts from, so every target exports it unchanged. Methods here:

- ``prune-unstructured:SPARSITY[:l1|random]``: ``torch.nn.utils.prune`` on every Linear
  weight of the encoder and decoder layers (global L1 magnitude by default, or random), made
  permanent. The zeros stay in dense tensors: dense kernels run no faster (measured, not
  assumed: the bench times the artifact as it is), and the gain is in the compressed size.
- ``cluster:K``: per tensor, each weight of those layers replaced by the nearest of K
  centroids (1-D k-means, Lloyd's iterations from quantiles). Stored dequantised: no
  runtime here has palettised kernels, so again only the compressed size shrinks.
- ``prune-heads:FRACTION[:magnitude|activation]`` and ``prune-ffn:...``: attention heads
  and feed-forward channels removed with their weights (exporters.structured), ranked by
  weight magnitude or, with ``activation``, by what they write on the ``--calibration``
  audio (exporters.importance): a smaller model whose layers differ in shape, which the
  graph targets and CTranslate2 (feed-forward only) hold and whisper.cpp does not (it
  sizes every layer from one head count and 4 x d_model).
- ``drop-decoder-layers:KEEP``: distil-whisper's student shape: KEEP decoder layers, spread
  from the first to the last (2 of 4: layers 0 and 3); what is lost shows in the WER, and
  ``--distill`` adds a short fine-tune on the user's audio (exporters.distill). The alignment
  heads of dropped layers are dropped and the others renumbered.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from pathlib import Path

from exporters.calibration import CalibrationSet
from exporters.options import CompressionStep
from runtimes.errors import OptionError


def _layer_linears(model):
    """(name, module) of every Linear inside the encoder and decoder layers (the weights
    compression acts on; embeddings, convolutions and the tied output projection stay)."""
    import torch

    for name, module in model.model.named_modules():
        if isinstance(module, torch.nn.Linear) and ".layers." in f".{name}":
            yield name, module


def _prune(model, step: CompressionStep) -> None:
    import torch
    from torch.nn.utils import prune

    params = [(module, "weight") for _, module in _layer_linears(model)]
    method = prune.L1Unstructured if step.how == "l1" else prune.RandomUnstructured
    torch.manual_seed(0)  # random pruning is reproducible
    prune.global_unstructured(params, pruning_method=method, amount=step.amount)
    for module, name in params:
        prune.remove(module, name)


def _cluster(model, step: CompressionStep, iterations: int = 20) -> None:
    """Per tensor K values. Zeros a pruning step left stay exactly zero (one of the K) and
    the other K - 1 centroids fit the remaining weights: from quantiles of all weights, a
    third of tiny.en's centroids sat on the zeros after ``prune-unstructured:0.3`` and the
    pair lost the transcripts (8 en clips: WER 95.8% against 9.0% and 7.8% for each alone)."""
    import torch

    k = int(step.amount)
    with torch.no_grad():
        for _, module in _layer_linears(model):
            weight = module.weight
            flat = weight.reshape(-1).float()
            pruned = flat == 0
            if bool(pruned.all()):
                continue
            if bool(pruned.any()):
                flat = flat.clone()
                flat[~pruned] = _kmeans(flat[~pruned], k - 1, iterations)
            else:
                flat = _kmeans(flat, k, iterations)
            weight.copy_(flat.reshape(weight.shape))


def _kmeans(flat, k: int, iterations: int):
    """``flat`` with each value replaced by the nearest of ``k`` 1-D centroids (Lloyd's
    iterations from quantiles)."""
    import torch

    centroids = torch.quantile(flat[:: max(1, flat.numel() // 100_000)],
                               torch.linspace(0, 1, k))
    for _ in range(iterations):
        nearest = _nearest(flat, centroids)
        sums = torch.zeros(k).index_add_(0, nearest, flat)
        counts = torch.bincount(nearest, minlength=k).float()
        centroids = torch.where(counts > 0, sums / counts.clamp(min=1), centroids)
    return centroids[_nearest(flat, centroids)]


def _nearest(values, centroids):
    import torch

    ordered, order = torch.sort(centroids)
    edges = (ordered[1:] + ordered[:-1]) / 2
    return order[torch.bucketize(values, edges)]


def _drop_decoder_layers(model, step: CompressionStep) -> None:
    import torch

    layers = model.model.decoder.layers
    keep = int(step.amount)  # fewer than there are: check_steps
    kept = kept_layers(len(layers), keep)
    model.model.decoder.layers = torch.nn.ModuleList(layers[i] for i in kept)
    for new, layer in enumerate(model.model.decoder.layers):
        for attention in (layer.self_attn, layer.encoder_attn):
            attention.layer_idx = new
    model.config.decoder_layers = keep
    heads = getattr(model.generation_config, "alignment_heads", None)
    if heads:
        model.generation_config.alignment_heads = [[kept.index(layer), head]
                                                   for layer, head in heads if layer in kept]


def kept_layers(total: int, keep: int) -> list[int]:
    """Indices of ``keep`` layers spread from the first to the last of ``total``."""
    if keep == 1:
        return [total - 1]
    return sorted({round(i * (total - 1) / (keep - 1)) for i in range(keep)})


def check_steps(steps: tuple[CompressionStep, ...], hf_dir: Path) -> None:
    """OptionError before any work for a step the checkpoint cannot take (more decoder
    layers kept than it has)."""
    import json

    layers = json.loads((Path(hf_dir) / "config.json").read_text())["decoder_layers"]
    for step in steps:
        if step.method == "drop-decoder-layers":
            if step.amount >= layers:
                raise OptionError(f"--compress {step}: the model has {layers} decoder layers; "
                                  f"keep fewer")
            layers = int(step.amount)


def check_audio(steps: tuple[CompressionStep, ...], audio: CalibrationSet | None) -> bool:
    """Whether a step measures on audio; OptionError when one does and none is given."""
    measuring = [str(step) for step in steps if step.needs_audio]
    if measuring and audio is None:
        raise OptionError(f"--compress {measuring[0]} measures importance on audio: pass "
                          f"--calibration (a folder of audio files or a manifest TSV)")
    return bool(measuring)


def _structured(model, step: CompressionStep, scores: list | None) -> None:
    from exporters.structured import prune_ffn, prune_heads

    (prune_heads if step.reshapes == "heads" else prune_ffn)(model, step.amount, scores)


class _Importance:
    """Activation scores on the calibration audio (``:activation`` steps): the windows
    and the uncompressed model's transcripts of them made once, the scores measured on the
    model as the steps before have left it."""

    def __init__(self, hf_dir: Path, audio: CalibrationSet, n_mels: int,
                 log: Callable[[str], None]):
        from exporters.teacher import pseudo_labels, windows

        self.audio, self.log = audio, log
        self.features = windows(audio, n_mels)
        log(f"      labelling {len(self.features)} calibration windows of 30 s with the "
            f"uncompressed model")
        self.labels = pseudo_labels(hf_dir, self.features)

    def scores(self, model, step: CompressionStep) -> list:
        from exporters.importance import activation_scores

        scores = activation_scores(model, self.features, self.labels, self.log)
        return scores.heads if step.reshapes == "heads" else scores.channels

    def to_dict(self) -> dict:
        return {"audio": self.audio.to_dict(len(self.audio.files())),
                "windows": len(self.features)}


_APPLY = {"prune-unstructured": _prune, "cluster": _cluster,
          "drop-decoder-layers": _drop_decoder_layers}


def compress(hf_dir: Path, steps: tuple[CompressionStep, ...], out_dir: Path,
             audio: CalibrationSet | None = None, log: Callable[[str], None] = print) -> dict:
    """Apply ``steps`` to the checkpoint in ``hf_dir`` (``:activation`` steps measure on
    ``audio``); write the result (weights, config, generation config, tokenizer and
    feature-extractor files) to ``out_dir``; return what the manifest records: the steps,
    the real sparsity of the compressed layers' weights, parameters and zlib-compressed size
    against the uncompressed model's, the per-layer heads and widths where a step changed
    them, and the calibration audio where one measured on it."""
    import shutil

    from runtimes.artifacts.checkpoint import LayerShapes, load_whisper

    needs_audio = check_audio(steps, audio)
    model = load_whisper(hf_dir)
    before, parameters = _packed_bytes(model), _parameters(model)
    importance = (_Importance(hf_dir, audio, model.config.num_mel_bins, log)
                  if needs_audio else None)
    for step in steps:
        if step.reshapes:
            _structured(model, step, importance.scores(model, step) if step.needs_audio
                        else None)
        else:
            _APPLY[step.method](model, step)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    for path in Path(hf_dir).iterdir():
        if path.is_file() and not (out_dir / path.name).exists():
            shutil.copy2(path, out_dir / path.name)
    weights = [m.weight.detach() for _, m in _layer_linears(model)]
    zeros = sum(int((w == 0).sum()) for w in weights)
    total = sum(w.numel() for w in weights)
    info = {"steps": [str(s) for s in steps],
            "layer_sparsity": round(zeros / max(total, 1), 4),
            "decoder_layers": model.config.decoder_layers,
            "parameters": _parameters(model), "uncompressed_parameters": parameters,
            "compressed_weight_bytes": _packed_bytes(model),
            "uncompressed_model_compressed_bytes": before}
    if any(step.reshapes for step in steps):
        info["layer_shapes"] = LayerShapes.of_model(model).to_dict()
    if importance is not None:
        info["importance"] = importance.to_dict()
    return info


def _parameters(model) -> int:
    """Parameters stored once (the tied output projection is the token embedding)."""
    return sum(p.numel() for p in model.parameters())


def _packed_bytes(model) -> int:
    """zlib (level 1) size of the float32 weights: what the redundancy pruning and
    clustering create is worth to an archive or a compressed transfer (level 1: fast enough
    for every export; the absolute figure is a bound, the ratio is the point)."""
    compressor = zlib.compressobj(1)
    size = 0
    for value in model.state_dict().values():
        size += len(compressor.compress(value.detach().float().numpy().tobytes()))
    return size + len(compressor.flush())
