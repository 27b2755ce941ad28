"""``--compress`` on real tiny.en: mild settings keep the JFK clip's words through a target
that holds them, the artifact computes what the compressed model does (parity passed) and
the manifest reports the cost against the uncompressed model: unstructured pruning then
clustering (which keeps the pruned zeros) in whisper.cpp's q8_0; feed-forward channels
(ONNX int8) and attention heads (OpenVINO int8) removed by activation importance on
calibration audio.
Dropped decoder layers keep no setting's words on tiny.en (README "Compression methods on
tiny.en"): the student 4 -> 3 layers in whisper.cpp's q8_0 is held to what it is, the
compressed model's own transcript, with the cost recorded. The random model takes every
method through every target in tests/parity."""

from __future__ import annotations

import pytest

import runtimes
from bench.metrics import normalizer
from exporters.api import export
from exporters.calibration import CalibrationSet
from exporters.options import CompressionStep, ExportOptions
from runtimes.artifacts.manifest import read_manifest
from tests.conftest import MANIFEST
from tests.slow.conftest import THREADS
from tests.slow.test_real_tiny_en import JFK

#: (target, precision, steps): settings measured to keep JFK's words on real tiny.en
#: (this file's cases; the README's table has what stronger settings cost)
CASES = [
    ("ggml", "q8_0", ("prune-unstructured:0.3", "cluster:256")),
    ("onnx", "int8", ("prune-ffn:0.0625:activation",)),
    ("openvino", "int8", ("prune-heads:0.05:activation",)),  # both in one ONNX int8: not JFK
]


@pytest.mark.parametrize("target,precision,steps", CASES, ids=lambda v: "+".join(v)
                         if isinstance(v, tuple) else v)
def test_mild_compression_keeps_jfk(target, precision, steps, tmp_path, jfk):
    if target == "ggml":
        pytest.importorskip("_pywhispercpp", reason="the 'ggml' extra is not installed")
    audio = (CalibrationSet(MANIFEST, ("longform",), max_windows=8)
             if any(s.endswith(":activation") for s in steps) else None)
    out = tmp_path / "a"
    export("bundled:tiny.en", ExportOptions(target, precision, threads=THREADS,
                                            calibration=audio, compress=steps),
           out, parity_audio=jfk, log=lambda _: None)
    manifest = read_manifest(out)
    compression = manifest.extra["compression"]
    assert manifest.parity["passed"] and manifest.options["compress"] == [
        str(CompressionStep.parse(step)) for step in steps]
    cost = compression["vs_uncompressed"]
    print(f"{target} {precision} {'+'.join(steps)}: token agreement with the uncompressed "
          f"model {cost['token_agreement']:.2f}")
    assert normalizer("en")(cost["artifact_text"]) == normalizer("en")(JFK)
    with runtimes.load(out, runtimes.RuntimeOptions(threads=THREADS)) as model:
        assert normalizer("en")(model.transcribe([jfk])[0].text) == normalizer("en")(JFK)
    if steps[0].startswith(("prune-ffn", "prune-heads")):
        assert compression["parameters"] < compression["uncompressed_parameters"]


def test_a_layer_dropped_student_is_what_the_compressed_model_says(tmp_path, jfk):
    """drop-decoder-layers:3 through whisper.cpp q8_0: a file of 3 decoder layers that
    whisper.cpp loads, whose tokens are the 3-layer PyTorch model's on JFK (parity), its
    transcript that text, and the manifest naming what the student lost against tiny.en."""
    pytest.importorskip("_pywhispercpp", reason="the 'ggml' extra is not installed")
    from runtimes.artifacts.ggml_file import read_ggml
    from runtimes.engines.whispercpp import MODEL_FILE

    out = tmp_path / "a"
    export("bundled:tiny.en", ExportOptions("ggml", "q8_0", threads=THREADS,
                                            compress=("drop-decoder-layers:3",)),
           out, parity_audio=jfk, log=lambda _: None)
    manifest = read_manifest(out)
    parity, cost = manifest.parity, manifest.extra["compression"]["vs_uncompressed"]
    assert read_ggml(out / MODEL_FILE, data=False).hparam("n_text_layer") == 3
    assert parity["passed"] and parity["token_agreement"] >= 0.9
    print(f"ggml q8_0 drop-decoder-layers:3: {parity['artifact_text']!r}; token agreement "
          f"with the uncompressed model {cost['token_agreement']:.2f}")
    assert cost["token_agreement"] < 1.0  # one layer of four is not free on tiny.en
    with runtimes.load(out, runtimes.RuntimeOptions(threads=THREADS)) as model:
        text = model.transcribe([jfk])[0].text
    assert normalizer("en")(text) == normalizer("en")(parity["artifact_text"])
