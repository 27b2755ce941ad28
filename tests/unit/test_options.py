import pytest

from exporters import registry
from exporters.options import ExportOptions
from runtimes.base import DecodingOptions, RuntimeOptions
from runtimes.errors import OptionError


@pytest.mark.parametrize("kwargs, match", [
    ({"beam_size": 0}, "beam_size must be an integer >= 1, got 0"),
    ({"task": "summarize"}, "task 'summarize' is not one of: transcribe, translate"),
    ({"max_new_tokens": 0}, "max_new_tokens must be in 1..224"),
    ({"temperature": 1.5}, r"temperature must be a number in 0..1 or a list of them, got 1.5"),
    ({"temperature": ()}, "temperature must be a number in 0..1"),
    ({"temperature": (0.0, "hot")}, "temperature must be a number in 0..1"),
    ({"best_of": 0}, "best_of must be an integer >= 1, got 0"),
    ({"log_prob_threshold": float("nan")}, "log_prob_threshold must be a number or None"),
    ({"no_speech_threshold": -0.1}, "no_speech_threshold must be a number >= 0 or None"),
    ({"long_form": "chunks"}, "long_form 'chunks' is not one of: vad, sequential"),
    ({"prompt_reset_on_temperature": 2}, "prompt_reset_on_temperature must be a number in 0..1"),
])
def test_decoding_options_reject_bad_values(kwargs, match):
    with pytest.raises(OptionError, match=match):
        DecodingOptions(**kwargs)


def test_temperature_is_a_ladder_and_fallback_follows_it():
    assert DecodingOptions().temperature == (0.0,) and not DecodingOptions().fallback
    ladder = DecodingOptions(temperature=[0, 0.5, 1])
    assert ladder.temperature == (0.0, 0.5, 1.0) and ladder.fallback and ladder.scored
    assert DecodingOptions(temperature=0.4).fallback  # one temperature > 0: sampling
    assert DecodingOptions(timestamps=True).scored and not DecodingOptions().scored


def test_runtime_and_export_options_name_the_bad_device():
    with pytest.raises(OptionError, match="device 'tpu' is not one of: cpu, cuda"):
        RuntimeOptions(device="tpu")
    with pytest.raises(OptionError, match="device 'npu'"):
        ExportOptions("ctranslate2", device="npu")
    with pytest.raises(OptionError, match="threads must be >= 0"):
        RuntimeOptions(threads=-1)


def test_registry_lists_ctranslate2_and_names_unknown_targets():
    assert "ctranslate2" in registry.names()
    with pytest.raises(OptionError, match=r"unknown target 'tflite'; available: .*ctranslate2"):
        registry.get("tflite")


@pytest.mark.parametrize("requested, device, expected", [
    (None, "cpu", "float32"),
    ("int8", "cpu", "int8_float32"),
    ("int8", "cuda", "int8_float16"),
    ("fp16", "cuda", "float16"),
    ("int8_bfloat16", "cpu", "int8_bfloat16"),
])
def test_ctranslate2_precision_shorthands(requested, device, expected):
    assert registry.get("ctranslate2").precision(requested, device) == expected


def test_ctranslate2_rejects_int4_with_the_accepted_list():
    with pytest.raises(OptionError, match="'int4' is not offered .* int8_float32"):
        registry.get("ctranslate2").precision("int4", "cpu")


def test_runtime_registry_formats_and_unknown_format():
    from runtimes.engines.registry import formats, runtime_class
    from runtimes.errors import ArtifactError

    assert {"ctranslate2", "transformers"} <= set(formats())
    with pytest.raises(ArtifactError, match="no runtime for artifact format 'tflite'"):
        runtime_class("tflite")


def test_provider_options_are_checked():
    with pytest.raises(OptionError, match="provider 'rocm' is not one of: cuda, tensorrt"):
        RuntimeOptions(device="cuda", provider="rocm")
    with pytest.raises(OptionError, match="provider 'tensorrt' needs device 'cuda'"):
        RuntimeOptions(provider="tensorrt")


def test_a_tensorrt_artifact_on_cpu_fails_fast(tmp_path):
    import json

    import runtimes
    from runtimes.errors import DeviceError

    for name in ("encoder.plan", "decoder.plan"):
        (tmp_path / name).write_bytes(b"engine")
    (tmp_path / "graph.json").write_text(json.dumps({"precision": "fp16", "vocab_size": 51864}))
    (tmp_path / "generation_config.json").write_text(json.dumps({"eos_token_id": 50256}))
    from runtimes.engines.registry import runtime_class

    with pytest.raises(DeviceError, match="TensorRT artifacts run on device 'cuda' only"):
        runtime_class("tensorrt")(tmp_path, runtimes.RuntimeOptions())


def test_a_torchscript_artifact_is_code_and_loads_only_when_trusted(tmp_path):
    """A scripted module runs whatever its forward does when loaded and called, so the
    runtime refuses before torch.jit.load sees the file."""
    import runtimes
    from runtimes.errors import OptionError

    (tmp_path / "encoder.pt").write_bytes(b"not even opened")
    (tmp_path / "decoder.pt").write_bytes(b"not even opened")
    (tmp_path / "graph.json").write_text('{"n_mels": 80, "n_layers": 1, "n_heads": 1, '
                                         '"d_model": 8, "vocab_size": 51864}')
    from runtimes.engines.registry import runtime_class

    with pytest.raises(OptionError, match="TorchScript files are programs.*trust_code=True"):
        runtime_class("torchscript")(tmp_path, runtimes.RuntimeOptions())


def test_a_pickled_transformers_checkpoint_cannot_run_code(tmp_path, tinyen_hf):
    """The other formats hold data: transformers reads a pytorch_model.bin with
    weights_only, so a pickle that would run code on load is refused instead."""
    import shutil

    import runtimes
    from runtimes.errors import ArtifactError

    for name in ("config.json", "generation_config.json"):
        shutil.copy(tinyen_hf / name, tmp_path / name)
    marker = tmp_path / "ran"

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    import pickle

    (tmp_path / "pytorch_model.bin").write_bytes(pickle.dumps({"x": Exploit()}))
    with pytest.raises(ArtifactError, match="transformers cannot load"):
        runtimes.load_runtime(tmp_path)
    assert not marker.exists()


def test_more_threads_than_cores_warns():
    import os

    import runtimes

    with pytest.warns(UserWarning, match="more than this machine's .* cores"):
        runtimes.RuntimeOptions(threads=(os.cpu_count() or 1) + 1)
