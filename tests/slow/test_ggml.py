"""Real tiny.en written as whisper.cpp's ggml file (``exporters.ggml_format``) loads in
whisper.cpp itself (``pywhispercpp``) in f16 and every q type and transcribes JFK."""

from __future__ import annotations

import pytest

from exporters.ggml_format import write_ggml

pytest.importorskip("gguf", reason="the 'ggml' extra (gguf) is not installed")


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
