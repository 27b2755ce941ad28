"""The GPU's half-precision forms, traced and run on the CPU: their logic (a TorchScript
trace in fp16, PyTorch in fp16 and bf16) is tested in CI, so the first GPU run tests only
what needs a GPU (tests/gpu/test_cuda.py)."""

from __future__ import annotations

import pytest

import runtimes
from exporters.api import export
from exporters.options import ExportOptions
from runtimes.artifacts.manifest import read_manifest


def test_a_torchscript_fp16_trace_exports_with_parity_and_runs_on_the_cpu(tmp_path, jfk):
    """Real tiny.en: a random model's near-ties flip in fp16 (token agreement 0.13 with an
    encoder error of 0.0007), which parity on the tokens cannot tell from a broken trace."""
    out = tmp_path / "ts-fp16"
    export("bundled:tiny.en", ExportOptions("torchscript", "fp16", threads=2), out,
           parity_audio=jfk, log=lambda _: None)
    manifest = read_manifest(out)
    assert manifest.precision == "fp16" and manifest.parity["passed"]
    options = runtimes.RuntimeOptions(threads=2, trust_code=True)
    with runtimes.load(out, options, runtimes.DecodingOptions(max_new_tokens=16)) as half:
        assert half.runtime.precision == "fp16"
        first, second = half.transcribe([jfk, jfk], 2)  # a batch of two
    assert first.tokens == second.tokens and 0 < len(first.tokens) <= 16


#: Encoder output's relative error against fp32 (measured on the tiny random model's JFK:
#: fp16 about 1e-3, bf16 about 1e-2).
HALF_BOUND = {"fp16": 0.01, "bf16": 0.05}


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_pytorch_half_precisions_run_on_the_cpu(precision, tiny_random, jfk):
    from exporters.validate import relative_error
    from runtimes.audio.features import batch_log_mel
    from runtimes.audio.files import load_audio

    features = batch_log_mel([load_audio(jfk)], 80)
    decoding = runtimes.DecodingOptions(max_new_tokens=16)
    with runtimes.load(tiny_random, runtimes.RuntimeOptions(precision=precision, threads=2),
                       decoding) as half, \
            runtimes.load(tiny_random, runtimes.RuntimeOptions(threads=2), decoding) as full:
        assert half.runtime.precision == precision
        error = relative_error(half.runtime.encode(features), full.runtime.encode(features))
        assert 0 < error < HALF_BOUND[precision], error
        assert 0 < len(half.transcribe([jfk])[0].tokens) <= 16
