"""Scores, sampling and temperature fallback of real tiny.en on real speech (issue 16)."""

import numpy as np
import pytest

import runtimes
from runtimes.audio.features import batch_log_mel
from tests.conftest import SPEECH
from tests.slow.conftest import THREADS, subset

SCORED = runtimes.DecodingOptions(timestamps=True)
SAMPLED = runtimes.DecodingOptions(timestamps=True, best_of=2)  # 2 candidates: a cheaper test
LADDER = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


@pytest.fixture(scope="module")
def windows(speech_rows):
    """Four real 30 s windows of the en subset, as log-mel."""
    _, audio = subset(speech_rows, "en")
    return batch_log_mel([a[:480000] for a in audio[:4]], 80)


def _decode(path, features, options=SCORED, temperature=0.0, seeds=None):
    with runtimes.load(path, runtimes.RuntimeOptions(threads=THREADS), options) as model:
        prompt = model.tokenizer.prompt("en", "transcribe", options.timestamps)
        return model.runtime.decode(features, [prompt] * len(features), options, temperature,
                                    seeds)


def test_scores_are_the_same_on_every_runtime(onnx_fp32, tinyen_hf, bundled_ct2_dir, windows):
    """Average log-probability and no-speech probability mean one thing everywhere: the
    graph loop, PyTorch's teacher-forced pass and CTranslate2's own scores agree (fp32)."""
    ours = _decode(onnx_fp32, windows)
    for other in (_decode(tinyen_hf, windows), _decode(bundled_ct2_dir, windows)):
        assert [d.tokens for d in other] == [d.tokens for d in ours]
        assert np.allclose([d.avg_logprob for d in other], [d.avg_logprob for d in ours],
                           atol=2e-3)
        assert np.allclose([d.no_speech_prob for d in other],
                           [d.no_speech_prob for d in ours], atol=2e-3)
    assert all(-1 < d.avg_logprob < 0 and 0 < d.no_speech_prob < 0.2 for d in ours)


def test_sampling_is_seeded_per_window_and_batch_invariant(onnx_fp32, windows):
    seeds = [11, 12, 13, 14]
    batched = _decode(onnx_fp32, windows, SAMPLED, 0.8, seeds)
    alone = [_decode(onnx_fp32, windows[i:i + 1], SAMPLED, 0.8, seeds[i:i + 1])[0]
             for i in range(4)]
    assert [d.tokens for d in alone] == [d.tokens for d in batched]
    assert all(d.temperature == 0.8 for d in batched)
    greedy = _decode(onnx_fp32, windows)
    assert any(s.tokens != g.tokens for s, g in zip(batched, greedy))  # it did sample
    other = _decode(onnx_fp32, windows, SAMPLED, 0.8, [21, 22, 23, 24])
    assert any(a.tokens != b.tokens for a, b in zip(batched, other))


@pytest.mark.parametrize("source", ["tinyen_hf", "bundled_ct2_dir"])
def test_pytorch_and_ctranslate2_sample_best_of_candidates(source, request, windows):
    found = _decode(request.getfixturevalue(source), windows[:2], SAMPLED, 0.6, [1, 2])
    assert all(d.tokens and d.temperature == 0.6 and -3 < d.avg_logprob < 0 for d in found)


def test_only_windows_below_the_threshold_are_decoded_again(onnx_fp32, speech_rows):
    """With the log-probability threshold between the clips' greedy scores, the likelier
    clips keep their greedy text at temperature 0 and the others climb the ladder; each
    clip's result is the same alone and batched (sampling is seeded per window), and the
    same served concurrently (the server's ladder, its greedy pass step by step)."""
    rows, audio = subset(speech_rows, "en")
    rows, audio = rows[:5], audio[:5]
    options = runtimes.RuntimeOptions(threads=THREADS)
    with runtimes.load(onnx_fp32, options, SCORED) as model:
        greedy = model.transcribe(audio, batch_size=5)
    scores = [t.segments[0].avg_logprob for t in greedy]
    # Between the 2nd and 3rd lowest scores, well clear of both: a threshold equal to a
    # clip's score (the median) made that clip's decision hang on float rounding, which
    # differs between a batch and the server's step-by-step rows.
    low = sorted(scores)
    assert low[2] - low[1] > 0.01
    threshold = (low[1] + low[2]) / 2
    ladder = runtimes.DecodingOptions(timestamps=True, temperature=LADDER, best_of=2,
                                      log_prob_threshold=threshold)
    with runtimes.load(onnx_fp32, options, ladder) as model:
        batched = model.transcribe(audio, batch_size=5)
        alone = [model.transcribe([a])[0] for a in audio]
    assert [t.tokens for t in alone] == [t.tokens for t in batched]
    for before, after, score in zip(greedy, batched, scores):
        if score >= threshold:
            assert after.tokens == before.tokens and after.segments[0].temperature == 0.0
        else:  # a higher temperature passed, or every one failed and the likeliest won
            assert (after.segments[0].temperature > 0
                    or after.segments[0].avg_logprob < threshold)
    assert any(t.segments[0].temperature > 0 for t in batched)
    with runtimes.load(onnx_fp32, options, ladder) as model:
        served = _serve(model, [SPEECH / r["path"] for r in rows])
    assert [r.text for r in served] == [t.text for t in batched]
    assert [[s.temperature for s in r.segments] for r in served] == [
        [s.temperature for s in t.segments] for t in batched]


def _serve(transcriber, paths):
    """The server's engine (iteration-level batching, 4 rows) answering concurrent
    requests for ``paths`` with temperature 0, as an HTTP request would reach it."""
    import asyncio

    from runtimes.serve.engine import ServeEngine

    engine = ServeEngine(transcriber, max_batch=4, max_wait_s=0.01)
    assert engine.batching == "steps"
    engine.start()

    async def requests():
        return await asyncio.gather(*(engine.transcribe_upload(
            p.read_bytes(), p.name, "en", None, timestamps=True) for p in paths))

    try:
        return asyncio.run(requests())
    finally:
        engine.batcher.close()


def test_windows_judged_silent_give_no_text(onnx_fp32, jfk):
    """The no-speech rule drops a window (here forced by thresholds every window meets);
    switched off, the same window is transcribed."""
    silent = runtimes.DecodingOptions(temperature=LADDER, no_speech_threshold=0.0,
                                      log_prob_threshold=0.0)
    options = runtimes.RuntimeOptions(threads=THREADS)
    with runtimes.load(onnx_fp32, options, silent) as model:
        result = model.transcribe([jfk])[0]
    assert result.text == "" and result.segments == () and result.windows == 1
    kept = runtimes.DecodingOptions(temperature=LADDER, no_speech_threshold=None,
                                    log_prob_threshold=0.0)
    with runtimes.load(onnx_fp32, options, kept) as model:
        assert "fellow Americans" in model.transcribe([jfk])[0].text


@pytest.mark.parametrize("level", [0.03, 0.1])
def test_noise_gives_no_hallucinated_segment(onnx_fp32, level):
    """20 s of generated white noise (one window, no VAD under 30 s): decoded plainly,
    tiny.en makes up a sentence it is unsure of, with a high no-speech probability; with
    the fallback on, the no-speech rule drops it."""
    noise = np.random.default_rng(0).normal(0, level, 16000 * 20).astype(np.float32)
    options = runtimes.RuntimeOptions(threads=THREADS)
    with runtimes.load(onnx_fp32, options, SCORED) as model:
        plain = model.transcribe([noise])[0]
    assert plain.text and all(s.no_speech_prob > 0.6 and s.avg_logprob < -1
                              for s in plain.segments)
    with runtimes.load(onnx_fp32, options,
                       runtimes.DecodingOptions(timestamps=True, temperature=LADDER)) as model:
        result = model.transcribe([noise])[0]
    assert result.text == "" and result.segments == () and result.windows == 1
