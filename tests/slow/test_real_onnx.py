"""ONNX artifacts of real tiny.en on real speech, against PyTorch fp32."""

import pytest

import runtimes
from bench.metrics import normalizer
from exporters.api import export
from exporters.targets.base import ExportOptions
from tests.slow.conftest import THREADS
from tests.slow.test_real_tiny_en import JFK

#: precision -> max WER points above PyTorch fp32 on the en subset
MARGINS = {"fp32": 0.002, "int8": 0.005}


@pytest.fixture(scope="module", params=sorted(MARGINS))
def onnx_model(request, tmp_path_factory, speech_rows):
    out = tmp_path_factory.mktemp("onnx") / request.param
    export("bundled:tiny.en", ExportOptions("onnx", request.param, threads=THREADS), out,
           log=lambda _: None)
    with runtimes.load(out, runtimes.RuntimeOptions(threads=THREADS)) as model:
        yield request.param, model


def test_onnx_jfk_and_wer_against_pytorch(onnx_model, pytorch_en_wer, en_wer, jfk):
    precision, model = onnx_model
    assert normalizer("en")(model.transcribe([jfk])[0].text) == normalizer("en")(JFK)
    wer = en_wer(model)
    print(f"WER pytorch fp32 {pytorch_en_wer:.4f}, onnx {precision} {wer:.4f}")
    assert wer - pytorch_en_wer <= MARGINS[precision]
