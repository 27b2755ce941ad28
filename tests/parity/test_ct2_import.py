"""CTranslate2 -> transformers import: exact on weights, identical greedy tokens."""

import numpy as np
import pytest

import runtimes
from exporters.ct2_format import CT2FormatError, read_model_bin
from exporters.ct2_import import import_ct2


@pytest.fixture(scope="module")
def ct2_tiny(tiny_random, tmp_path_factory):
    from ctranslate2.converters import TransformersConverter

    out = tmp_path_factory.mktemp("ct2") / "model"
    TransformersConverter(str(tiny_random), copy_files=["tokenizer.json"]).convert(str(out))
    return out


def test_import_then_convert_back_reproduces_every_variable(ct2_tiny, tmp_path):
    from ctranslate2.converters import TransformersConverter

    imported = tmp_path / "hf"
    import_ct2(ct2_tiny, imported)
    again = tmp_path / "ct2-again"
    TransformersConverter(str(imported)).convert(str(again))
    original, round_trip = read_model_bin(ct2_tiny / "model.bin"), read_model_bin(again / "model.bin")
    assert original.variables.keys() == round_trip.variables.keys()
    for name, value in original.variables.items():
        np.testing.assert_array_equal(value, round_trip.variables[name], err_msg=name)
    assert original.aliases == round_trip.aliases


def test_imported_model_decodes_like_the_original(ct2_tiny, tmp_path, jfk):
    imported = tmp_path / "hf"
    import_ct2(ct2_tiny, imported)
    with runtimes.load(ct2_tiny) as ct2, runtimes.load(imported) as hf:
        assert ct2.transcribe([jfk])[0].tokens == hf.transcribe([jfk])[0].tokens


def test_int8_ct2_models_are_dequantised(tiny_random, tmp_path):
    from ctranslate2.converters import TransformersConverter

    q = tmp_path / "q"
    TransformersConverter(str(tiny_random), copy_files=["tokenizer.json"]).convert(
        str(q), quantization="int8")
    import_ct2(q, tmp_path / "hf")
    from safetensors.numpy import load_file

    weights = load_file(tmp_path / "hf" / "model.safetensors")
    fc1 = weights["model.encoder.layers.0.fc1.weight"]
    assert fc1.dtype == np.float32 and 0 < np.abs(fc1).max() < 10


def test_truncated_model_bin_is_reported(ct2_tiny, tmp_path):
    broken = tmp_path / "model.bin"
    broken.write_bytes((ct2_tiny / "model.bin").read_bytes()[:5000])
    with pytest.raises(CT2FormatError, match="truncated"):
        read_model_bin(broken)
