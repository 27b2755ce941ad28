"""whisper.cpp's ggml file (``exporters.ggml_format``): every type written from the tiny
random Whisper parses back to the same tensors (within the type's rounding), in the types
and shapes whisper.cpp's loader expects; real tiny.en in each type loads in whisper.cpp
itself (``pywhispercpp``) and transcribes JFK."""

from __future__ import annotations

import numpy as np
import pytest

from exporters.ggml_format import FILE_TYPES, GGML_TYPES, decode_tensor, ggml_name, read_ggml, write_ggml

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


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["f16", "q8_0", "q5_1", "q5_0", "q4_1", "q4_0"])
def test_whisper_cpp_loads_each_type_of_real_tiny_en(tinyen_hf, jfk, tmp_path, dtype):
    """f32 is written but whisper.cpp 1.8.5 cannot run it on a CPU (its 1-D convolution
    asserts float16 kernels, and its loader wants float32 ones in a float32 file)."""
    pytest.importorskip("pywhispercpp", reason="the 'ggml' extra (pywhispercpp) is not installed")
    from pywhispercpp.model import Model
    from transformers import WhisperForConditionalGeneration

    from bench.metrics import normalizer
    from runtimes.audio import load_audio

    model = WhisperForConditionalGeneration.from_pretrained(tinyen_hf)
    out = tmp_path / f"ggml-{dtype}.bin"
    write_ggml(model, tinyen_hf, out, dtype)
    whisper_cpp = Model(str(out), n_threads=2, print_progress=False, print_realtime=False,
                        redirect_whispercpp_logs_to=None)
    text = " ".join(s.text for s in whisper_cpp.transcribe(load_audio(jfk)))
    assert normalizer("en")(text) == ("and so my fellow americans ask not what your country can "
                                      "do for you ask what you can do for your country")
