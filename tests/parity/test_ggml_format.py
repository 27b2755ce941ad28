"""whisper.cpp's ggml file (``exporters.ggml_format``): every type written from the tiny
random Whisper parses back to the same tensors (within the type's rounding), in the types
and shapes whisper.cpp's loader expects (real tiny.en in whisper.cpp itself:
tests/slow/test_ggml.py)."""

from __future__ import annotations

import numpy as np
import pytest

from exporters.ggml_format import ggml_name, write_ggml
from runtimes.artifacts.ggml_file import FILE_TYPES, GGML_TYPES, decode_tensor, read_ggml

pytest.importorskip("gguf", reason="the 'ggml' extra (gguf) is not installed")

#: Largest error relative to the tensor's largest magnitude, per type: f16's rounding, and
#: the block quantisers' step (scale/127 for q8, /15 for q5, /7 for q4).
TOLERANCE = {"f32": 0.0, "f16": 1e-3, "q8_0": 1e-2, "q5_1": 0.05, "q5_0": 0.07,
             "q4_1": 0.1, "q4_0": 0.15}


@pytest.mark.parametrize("dtype", list(FILE_TYPES))
def test_every_type_parses_back_to_the_same_tensors(tiny_random, tmp_path, dtype):
    from transformers import WhisperForConditionalGeneration

    model = WhisperForConditionalGeneration.from_pretrained(tiny_random)
    out = tmp_path / "model.bin"
    write_ggml(model, tiny_random, out, dtype)
    parsed = read_ggml(out)
    config = model.config
    assert parsed.hparams[:10] == (config.vocab_size, config.max_source_positions,
                                   config.d_model, config.encoder_attention_heads,
                                   config.encoder_layers, config.max_target_positions,
                                   config.d_model, config.decoder_attention_heads,
                                   config.decoder_layers, config.num_mel_bins)
    assert parsed.hparams[10] % 1000 == FILE_TYPES[dtype]
    assert parsed.filters.shape == (config.num_mel_bins, 201) and len(parsed.vocab) == 50256
    expected = {ggml_name(k): v.detach().float().numpy() for k, v in model.state_dict().items()
                if ggml_name(k) is not None}
    assert set(parsed.tensors) == set(expected)
    for name, (kind, shape, data) in parsed.tensors.items():
        want = expected[name].reshape(shape)
        if want.ndim == 1 or name.endswith((".conv1.bias", ".conv2.bias")) or "positional" in name:
            assert kind == GGML_TYPES["f32"], name
        elif want.ndim == 3:
            assert kind == GGML_TYPES["f32" if dtype == "f32" else "f16"], name
        else:
            assert kind == GGML_TYPES[dtype], name
        error = np.abs(decode_tensor(kind, shape, data) - want).max()
        assert error <= TOLERANCE[dtype] * np.abs(want).max() + 1e-7, (name, error)
