"""ONNX Runtime's IO-binding path (the one CUDA runs: caches as torch tensors bound to the
sessions, rows selected and joined with torch) run on CPU tensors, so CI tests its logic
and the first GPU run tests only what needs a GPU (tests/gpu/test_cuda.py)."""

from __future__ import annotations

from dataclasses import replace

import pytest

import runtimes
from tests.slow.conftest import THREADS, subset

pytest.importorskip("torch")


@pytest.mark.parametrize("decoding", [
    runtimes.DecodingOptions(),  # greedy: finished rows leave the batch (select)
    runtimes.DecodingOptions(beam_size=2),  # beams: rows repeated and reordered
    runtimes.DecodingOptions(word_timestamps=True),  # the alignment graph on bound caches
], ids=["greedy", "beam", "words"])
def test_bound_cpu_tensors_give_the_plain_path_s_transcripts(onnx_int8_words, speech_rows,
                                                              decoding):
    _, audio = subset(speech_rows, "en")
    audio = audio[:3]  # different lengths: rows finish at different steps
    plain = runtimes.RuntimeOptions(threads=THREADS)
    found = {}
    for bound in (False, True):
        with runtimes.load(onnx_int8_words, replace(plain, io_binding=bound), decoding) as model:
            assert ("IO binding" in model.runtime.backend) == bound
            found[bound] = model.transcribe(audio, 3)
    for ours, theirs in zip(found[True], found[False]):
        assert ours.tokens == theirs.tokens
        assert [(w.word, w.start, w.end) for s in ours.segments for w in s.words] == \
            [(w.word, w.start, w.end) for s in theirs.segments for w in s.words]
