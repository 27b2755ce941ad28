"""Shared fixtures: the real speech data, a tiny random Whisper, and bundled tiny.en.

The tiny random model is made meaningful as DESIGN.md asks: its decoder keeps init_std=1.0
(0.2 still repeats one token here), so greedy decoding emits varied, audio-dependent tokens
and token equality is a real check; its encoder has trained-like activations (see
``_trained_like_encoder``), so quantisation error there means what it means for a real model.
"""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# A GPU machine gets a copy of the clips elsewhere (scripts/gpu_check.py's notes).
SPEECH = Path(os.environ.get("WHISPER_EXPORTERS_SPEECH", ROOT.parent / "shared/data/speech"))
MANIFEST = SPEECH / "manifest.tsv"


def pytest_configure(config):
    """Exports check parity on the JFK clip, as the command line does from a checkout (the
    library itself defaults to a synthetic signal: an installed package has no clips)."""
    jfk = SPEECH / "jfk" / "jfk.flac"
    if jfk.is_file():
        os.environ.setdefault("WHISPER_EXPORTERS_PARITY_AUDIO", str(jfk))


def pytest_collection_modifyitems(config, items):
    for item in items:
        tier = Path(str(item.fspath)).parent.name
        if tier in ("slow", "gpu"):
            item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture(scope="session")
def speech_rows() -> list[dict[str, str]]:
    if not MANIFEST.is_file():
        pytest.skip(f"real speech data not found at {SPEECH}")
    with open(MANIFEST, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


@pytest.fixture(scope="session")
def jfk(speech_rows) -> Path:
    return SPEECH / "jfk" / "jfk.flac"


@pytest.fixture(scope="session")
def en_clips(speech_rows) -> list[dict[str, str]]:
    return [r for r in speech_rows if r["subset"] == "en"]


def build_tiny_whisper(out_dir: Path, vocab_dir: Path) -> Path:
    """A randomly initialised 2+2-layer Whisper with the real English vocabulary (~14 MB)."""
    import torch
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperTokenizerFast,
    )

    torch.manual_seed(0)
    config = WhisperConfig(
        vocab_size=51864, d_model=64, encoder_layers=2, decoder_layers=2,
        encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=128,
        decoder_ffn_dim=128, num_mel_bins=80, max_source_positions=1500,
        max_target_positions=448, init_std=1.0, pad_token_id=50256, bos_token_id=50257,
        eos_token_id=50256, decoder_start_token_id=50257,
    )
    model = WhisperForConditionalGeneration(config).eval()
    _trained_like_encoder(model)
    _no_timestamp_tokens(model, first_timestamp=50363)
    model.generation_config = GenerationConfig(
        decoder_start_token_id=50257, bos_token_id=50256, eos_token_id=50256,
        pad_token_id=50256, no_timestamps_token_id=50362, is_multilingual=False,
        suppress_tokens=[], begin_suppress_tokens=[220, 50256], max_length=448,
    )
    model.save_pretrained(out_dir)
    WhisperTokenizerFast(tokenizer_file=str(vocab_dir / "tokenizer.json")).save_pretrained(out_dir)
    shutil.copyfile(vocab_dir / "tokenizer.json", out_dir / "tokenizer.json")
    WhisperFeatureExtractor(feature_size=80).save_pretrained(out_dir)
    return out_dir


def _trained_like_encoder(model) -> None:
    """Scale every encoder weight matrix to std 1/sqrt(fan_in), as in trained layers.

    With init_std=1.0 each layer multiplies activations by sqrt(fan_in): attention becomes
    one-hot and the encoder chaotic, so int8 rounding was amplified into relative errors that
    depend on the CPU's int8 kernels (CTranslate2 int8 on JFK: 0.25 with AVX-512 VNNI, 0.567
    with AVX2 only, where the u8s8 multiply-add saturates). Scaled, the errors are those of a
    real model's arithmetic (on 2 en clips: 0.018 with VNNI, 0.125 with oneDNN capped at
    AVX2; real tiny.en gives 0.04 and 0.057).
    """
    import torch

    with torch.no_grad():
        for name, weight in model.model.encoder.named_parameters():
            if weight.dim() >= 2 and "embed_positions" not in name:
                weight.mul_(weight[0].numel() ** -0.5)


def _no_timestamp_tokens(model, first_timestamp: int) -> None:
    """Shrink the (tied) embeddings of the timestamp tokens so greedy decoding never picks one.

    A trained model never emits them after <|notimestamps|>; this random one did, and
    transformers' generate then treats the window as timestamped and decodes it again from
    the last timestamp (268 tokens for JFK against 224 from every other runtime), so the
    PyTorch reference and the artifacts disagreed for a reason no real model has.
    """
    import torch

    with torch.no_grad():
        model.model.decoder.embed_tokens.weight[first_timestamp:].mul_(1e-3)


@pytest.fixture(scope="session")
def bundled_ct2_dir() -> Path:
    from exporters.sources import bundled_ct2_dir

    return bundled_ct2_dir("tiny.en")


@pytest.fixture(scope="session")
def tiny_random(tmp_path_factory, bundled_ct2_dir) -> Path:
    return build_tiny_whisper(tmp_path_factory.mktemp("tiny-random"), bundled_ct2_dir)


@pytest.fixture(scope="session")
def tinyen_hf() -> Path:
    from exporters.sources import resolve

    return resolve("bundled:tiny.en").hf_dir
