"""Tiny random Whispers with the shapes users deploy: large-v3 (128 mel bins, the 51,866-token
vocabulary whose ``<|yue|>`` at 50358 moves every task and timestamp id by one), turbo (few
decoder layers under a deeper encoder), a distil-whisper student (2 decoder layers), and a
fine-tuned checkpoint whose ``generation_config.json`` has no alignment heads or language
tables. d_model 64, so each exports in seconds; weights random, so their transcripts are
noise, but every shape the exporters and runtimes read is the real one.

Every weight matrix is scaled like a trained layer's (``DECODER_GAIN`` / sqrt(fan-in) in the
decoder, 1 / sqrt(fan-in) in the encoder), so that a runtime's rounding moves the logits as
little as it does a real model's. With ``init_std=1.0`` left in the decoder (attention in
fp32, as the parity check runs whisper.cpp), ggml f16's greedy tokens on JFK left
PyTorch's at step 12-38 of 48; scaled, they keep all 48 on every shape.
"""

from __future__ import annotations

import copy
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

#: The decoder's weights at this many times a trained layer's 1/sqrt(fan-in): at 1 greedy
#: decoding repeats one or two tokens; at 3 JFK gives 21-37 distinct tokens in 48.
DECODER_GAIN = 3.0

#: The first id large-v3 moves: ``<|yue|>`` takes it, and every id from it on moves by one.
YUE = 50358


@dataclass(frozen=True)
class Shape:
    n_mels: int
    multilingual: bool
    encoder_layers: int
    decoder_layers: int
    v3_vocabulary: bool = False  # 51,866 tokens with <|yue|>
    bare_generation_config: bool = False  # no alignment heads, no language tables


SHAPES = {
    "large-v3": Shape(128, True, 2, 2, v3_vocabulary=True),
    "turbo": Shape(128, True, 4, 1, v3_vocabulary=True),
    "distil-small.en": Shape(80, False, 4, 2),
    "fine-tuned": Shape(80, True, 2, 2, bare_generation_config=True),
}


def v3_tokenizer(base: dict) -> dict:
    """large-v3's tokenizer.json from a multilingual (51,865) one: ``<|yue|>`` inserted at
    50358 and every special id from there on moved by one, as OpenAI's v3 vocabulary is."""
    tokenizer = copy.deepcopy(base)
    added = tokenizer["added_tokens"]
    for token in added:
        if token["id"] >= YUE:
            token["id"] += 1
    template = next(t for t in added if t["content"] == "<|su|>")
    added.insert(added.index(template) + 1, {**template, "id": YUE, "content": "<|yue|>"})
    _shift_ids(tokenizer["post_processor"])
    return tokenizer


def _shift_ids(node) -> None:
    if isinstance(node, dict):
        if isinstance(node.get("ids"), list):
            node["ids"] = [i + 1 if i >= YUE else i for i in node["ids"]]
        for value in node.values():
            _shift_ids(value)
    elif isinstance(node, list):
        for value in node:
            _shift_ids(value)


def build(out_dir: Path, shape: Shape, english_vocab: Path, multilingual_vocab: Path) -> Path:
    """The shape as a transformers directory (model, tokenizer, feature extractor)."""
    import torch
    from transformers import (
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperTokenizerFast,
    )

    from tests.conftest import _no_timestamp_tokens, _trained_like_encoder

    tokenizer = json.loads(((multilingual_vocab if shape.multilingual else english_vocab)
                            / "tokenizer.json").read_text())
    if shape.v3_vocabulary:
        tokenizer = v3_tokenizer(tokenizer)
    ids = {t["content"]: t["id"] for t in tokenizer["added_tokens"]}
    vocab = 51866 if shape.v3_vocabulary else 51865 if shape.multilingual else 51864
    eot, sot = ids["<|endoftext|>"], ids["<|startoftranscript|>"]
    torch.manual_seed(0)
    config = WhisperConfig(
        vocab_size=vocab, d_model=64, encoder_layers=shape.encoder_layers,
        decoder_layers=shape.decoder_layers, encoder_attention_heads=4,
        decoder_attention_heads=4, encoder_ffn_dim=256, decoder_ffn_dim=256,
        num_mel_bins=shape.n_mels, max_source_positions=1500, max_target_positions=448,
        init_std=1.0, pad_token_id=eot, bos_token_id=eot, eos_token_id=eot,
        decoder_start_token_id=sot)
    model = WhisperForConditionalGeneration(config).eval()
    _trained_like_encoder(model)
    _trained_like_decoder(model)
    _no_timestamp_tokens(model, first_timestamp=ids["<|notimestamps|>"] + 1)
    model.generation_config = _generation_config(shape, ids)
    model.save_pretrained(out_dir)
    (out_dir / "tokenizer.json").write_text(json.dumps(tokenizer))
    WhisperTokenizerFast(tokenizer_file=str(out_dir / "tokenizer.json")).save_pretrained(out_dir)
    WhisperFeatureExtractor(feature_size=shape.n_mels).save_pretrained(out_dir)
    return out_dir


def _trained_like_decoder(model) -> None:
    """Scale the decoder's weight matrices (not its embeddings, whose size sets the logits'
    spread) to ``DECODER_GAIN`` / sqrt(fan-in)."""
    import torch

    with torch.no_grad():
        for name, weight in model.model.decoder.named_parameters():
            if weight.dim() >= 2 and "embed" not in name:
                weight.mul_(DECODER_GAIN * weight[0].numel() ** -0.5)


def _generation_config(shape: Shape, ids: dict[str, int]):
    from transformers import GenerationConfig

    eot = ids["<|endoftext|>"]
    fields = dict(decoder_start_token_id=ids["<|startoftranscript|>"], bos_token_id=eot,
                  eos_token_id=eot, pad_token_id=eot, max_length=448,
                  no_timestamps_token_id=ids["<|notimestamps|>"], suppress_tokens=[],
                  begin_suppress_tokens=[220, eot], is_multilingual=shape.multilingual)
    if shape.multilingual and not shape.bare_generation_config:
        first, last = ids["<|startoftranscript|>"] + 1, ids["<|translate|>"]
        fields.update(
            lang_to_id={c: i for c, i in ids.items() if first <= i < last},
            task_to_id={"translate": ids["<|translate|>"], "transcribe": ids["<|transcribe|>"]},
            prev_sot_token_id=ids["<|startofprev|>"])
    if not shape.bare_generation_config:
        fields["alignment_heads"] = [[shape.decoder_layers - 1, 0], [shape.decoder_layers - 1, 1]]
    return GenerationConfig(**fields)


def copy_vocabulary(src: Path, out: Path) -> Path:
    """A folder holding only ``src``'s tokenizer.json (what ``build`` reads)."""
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src / "tokenizer.json", out / "tokenizer.json")
    return out
