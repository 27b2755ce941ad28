"""Write whisper.cpp's ggml model file from transformers Whisper weights.

The layout is ``runtimes.artifacts.ggml_file``'s (the reader, below both layers). whisper.cpp fixes
each tensor's type: float32 for 1-D tensors, the conv biases and the positional embeddings;
the conv kernels float16 (float32 in a float32 file); every other matrix the file's type,
quantised in 32-value blocks for the q types (by the ``gguf`` package's numpy quantisers,
llama.cpp's own, not by hand). The k-quants need rows divisible by 256, which tiny's 384 is
not, so they are not offered.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import BinaryIO

import numpy as np

from runtimes.artifacts.ggml_file import FILE_TYPES, GGML_TYPES, MAGIC, QNT_VERSION_FACTOR, QUANTISED

QNT_VERSION = 2 * QNT_VERSION_FACTOR  # GGML_QNT_VERSION 2, added to q types' file type

#: transformers module names -> whisper.cpp's (openai/whisper's) names.
_NAMES = {
    "self_attn.k_proj": "attn.key", "self_attn.q_proj": "attn.query",
    "self_attn.v_proj": "attn.value", "self_attn.out_proj": "attn.out",
    "self_attn_layer_norm": "attn_ln", "encoder_attn.q_proj": "cross_attn.query",
    "encoder_attn.k_proj": "cross_attn.key", "encoder_attn.v_proj": "cross_attn.value",
    "encoder_attn.out_proj": "cross_attn.out", "encoder_attn_layer_norm": "cross_attn_ln",
    "fc1": "mlp.0", "fc2": "mlp.2", "final_layer_norm": "mlp_ln",
}
_TOP_NAMES = {
    "encoder.layer_norm.bias": "encoder.ln_post.bias",
    "encoder.layer_norm.weight": "encoder.ln_post.weight",
    "encoder.embed_positions.weight": "encoder.positional_embedding",
    "decoder.layer_norm.bias": "decoder.ln.bias", "decoder.layer_norm.weight": "decoder.ln.weight",
    "decoder.embed_positions.weight": "decoder.positional_embedding",
    "decoder.embed_tokens.weight": "decoder.token_embedding.weight",
}
_FLOAT32 = ("encoder.conv1.bias", "encoder.conv2.bias", "encoder.positional_embedding",
            "decoder.positional_embedding")


def ggml_name(hf_name: str) -> str | None:
    """whisper.cpp's name of a transformers state-dict entry (None: not stored, the
    output projection tied to the token embedding)."""
    parts = hf_name.split(".")
    if parts[0] == "proj_out":
        return None
    parts = parts[1:]  # drop "model."
    if parts[1] == "layers":
        module = ".".join(parts[3:-1])
        if module == "encoder_attn.k_proj" and parts[0] == "encoder":
            module = "self_attn.k_proj"
        return ".".join([parts[0], "blocks", parts[2], _NAMES[module], parts[-1]])
    name = ".".join(parts)
    return _TOP_NAMES.get(name, name)


def tensor_type(name: str, ndim: int, dtype: str) -> str:
    """The type whisper.cpp expects ``name`` in, in a file of type ``dtype``."""
    if ndim < 2 or name in _FLOAT32:
        return "f32"
    if ndim == 3:  # the conv kernels
        return "f32" if dtype == "f32" else "f16"
    return dtype


def encode(array: np.ndarray, kind: str) -> bytes:
    """A tensor's bytes in ggml type ``kind`` (row-major; q types in blocks of 32 along
    the last axis)."""
    if kind == "f32":
        return np.ascontiguousarray(array, np.float32).tobytes()
    if kind == "f16":
        return np.ascontiguousarray(array, np.float16).tobytes()
    from gguf import GGMLQuantizationType
    from gguf.quants import quantize

    return quantize(np.ascontiguousarray(array, np.float32),
                    GGMLQuantizationType[kind.upper()]).tobytes()


def write_ggml(model, hf_dir: Path, out: Path, dtype: str) -> None:
    """Write ``model`` (a transformers ``WhisperForConditionalGeneration``, its tokenizer
    files in ``hf_dir``) to ``out`` as a ggml file of type ``dtype`` (see GGML_TYPES)."""
    from runtimes.audio.features import mel_filters

    if dtype not in FILE_TYPES:
        raise ValueError(f"ggml type {dtype!r} is not one of: {', '.join(FILE_TYPES)}")
    config = model.config
    file_type = FILE_TYPES[dtype] + (QNT_VERSION if dtype in QUANTISED else 0)
    hparams = (config.vocab_size, config.max_source_positions, config.d_model,
               config.encoder_attention_heads, config.encoder_layers,
               config.max_target_positions, config.d_model, config.decoder_attention_heads,
               config.decoder_layers, config.num_mel_bins, file_type)
    filters = mel_filters(config.num_mel_bins)
    with open(out, "wb") as f:
        f.write(struct.pack("<12i", MAGIC, *hparams))
        f.write(struct.pack("<2i", *filters.shape))
        f.write(filters.astype("<f4").tobytes())
        _write_vocab(f, hf_dir)
        for hf_name, value in model.state_dict().items():
            name = ggml_name(hf_name)
            if name is None:
                continue
            array = value.detach().float().numpy()
            if name in ("encoder.conv1.bias", "encoder.conv2.bias"):
                array = array.reshape(-1, 1)
            kind = tensor_type(name, array.ndim, dtype)
            raw = name.encode()
            f.write(struct.pack("<3i", array.ndim, len(raw), GGML_TYPES[kind]))
            f.write(struct.pack(f"<{array.ndim}i", *reversed(array.shape)))
            f.write(raw)
            f.write(encode(array, kind))


def _write_vocab(f: BinaryIO, hf_dir: Path) -> None:
    """The base vocabulary, each token as its bytes, by id (<|endoftext|> and the special
    tokens after it are implied by their offsets, as whisper.cpp's converter writes it)."""
    vocab = json.loads((Path(hf_dir) / "vocab.json").read_text(encoding="utf-8"))
    vocab.pop("<|endoftext|>", None)
    decoder = {c: b for b, c in _bytes_to_unicode().items()}
    f.write(struct.pack("<i", len(vocab)))
    for token, _ in sorted(vocab.items(), key=lambda item: item[1]):
        data = bytes(decoder[c] for c in token)
        f.write(struct.pack("<i", len(data)))
        f.write(data)


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte <-> printable character table (vocab.json spells bytes with it)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, chars)))
