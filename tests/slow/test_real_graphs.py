"""Graph artifacts (ONNX, TorchScript, OpenVINO) of real tiny.en on real speech, against PyTorch fp32."""

import pytest

import runtimes
from bench.metrics import normalizer
from exporters import registry
from exporters.api import export
from exporters.calibration import CalibrationSet
from exporters.options import ExportOptions
from tests.conftest import MANIFEST
from tests.slow.conftest import THREADS, subset
from tests.slow.test_real_tiny_en import JFK

#: Quantised graphs against PyTorch fp32, clip by clip, on every other en clip (28 clips,
#: 445 words; PyTorch fp32 has 27 word errors there on both CPU kinds). int8 and bf16
#: arithmetic differs between CPU kinds, so one corpus WER margin of 4 words failed on an
#: AVX2 machine where OpenVINO int8_static lost 5 words (issue 32). Per clip instead: a
#: clip is "worse" where it has 2 or more word errors beyond PyTorch's (a phrase lost or
#: garbled; a near-tie flipping one word is not counted), and the extra words in all are
#: bounded too. Measured (scripts/clip_errors.py; tests/README.md), extra words / worse clips:
#:   AVX-512 + VNNI + AMX (Xeon, family 6 model 207): onnx int8 (VNNI-tuned) +2 / 0,
#:     openvino int8 (bf16) +0 / 0, openvino int8_static +1 / 0.
#:   AVX-512 + VNNI + BF16, no AMX (AMD EPYC family 25 model 17): the same figures.
#:   AVX2 + FMA only (AMD EPYC family 25 model 1, issue 32's fresh clone): openvino
#:     int8_static +5 words in all (32 against 27); onnx int8 (AVX2-tuned) and openvino int8
#:     within the old 4-word margin. Per clip, +5 words make at most 2 clips worse by 2+
#:     (unless other clips got better: none did on the AVX-512 kind). Emulated per clip
#:     (tests/README.md: QEMU as an AVX2-only EPYC, one thread): onnx int8 (AVX2-tuned)
#:     +1 / 0, openvino int8_static +4 / 1 (one clip +2), ctranslate2 int8 (ISA capped
#:     natively) +1.
#: Bounds: 2 worse clips and 8 extra words (1.8 points) hold for all of these whichever
#: clips the words fall on; slack 3 words and 1 clip over the worst measured. A real
#: regression still fails: full-range (VNNI-tuned) int8 weights on an AVX2 CPU lost 4-7 WER points over all
#: of en in issue 12, 18-31 words on these 445.
QUANTISED = {("onnx", "int8"), ("openvino", "int8"), ("openvino", "int8_static")}
MAX_WORSE_CLIPS = 2
MAX_EXTRA_WORDS = 8
#: fp32 graphs compute what PyTorch fp32 does: their tokens on the first 8 en clips are
#: PyTorch's (stricter than a WER margin over the whole subset, and 4x cheaper)
EXACT = {("onnx", "fp32"), ("torchscript", "fp32")}


#: the session's exports these cases share with other files (tests/slow/conftest.py)
SHARED = {("onnx", "fp32"): "onnx_fp32", ("onnx", "int8"): "onnx_int8",
          ("openvino", "int8"): "openvino_int8_words",
          ("torchscript", "fp32"): "torchscript_fp32_words"}


@pytest.fixture(scope="module", params=sorted({*QUANTISED, *EXACT}), ids="-".join)
def graph_model(request, tmp_path_factory, speech_rows):
    target, precision = request.param
    if request.param in SHARED:
        out = request.getfixturevalue(SHARED[request.param])
    else:
        out = tmp_path_factory.mktemp(target) / precision
        calibration = (CalibrationSet(MANIFEST, ("formats", "multi"))
                       if registry.get(target).calibrated(precision) else None)
        export("bundled:tiny.en", ExportOptions(target, precision, threads=THREADS,
                                                calibration=calibration), out, log=lambda _: None)
    with runtimes.load(out, runtimes.RuntimeOptions(threads=THREADS, trust_code=True)) as model:
        yield request.param, model


@pytest.fixture(scope="module")
def en8(speech_rows, pytorch_fp32):
    """The first 8 en clips and PyTorch fp32's tokens on them."""
    audio = subset(speech_rows, "en")[1][:8]
    return audio, [t.tokens for t in pytorch_fp32.transcribe(audio, 8)]


def test_jfk_and_wer_against_pytorch(graph_model, request, jfk):
    case, model = graph_model
    assert normalizer("en")(model.transcribe([jfk])[0].text) == normalizer("en")(JFK)
    if case in EXACT:
        audio, want = request.getfixturevalue("en8")
        got = [t.tokens for t in model.transcribe(audio, 8)]
        assert sum(g == w for g, w in zip(got, want)) >= 7, (got, want)  # a near-tie may flip
        return
    reference = request.getfixturevalue("pytorch_clip_errors")
    errors = request.getfixturevalue("en_clip_errors")(model)
    extra = [e - r for e, r in zip(errors, reference)]
    worse = [i for i, d in enumerate(extra) if d >= 2]
    print(f"{' '.join(case)}: {sum(errors)} word errors against PyTorch fp32's "
          f"{sum(reference)}: {sum(extra):+d} words, clips worse by 2+: {worse}")
    assert len(worse) <= MAX_WORSE_CLIPS and sum(extra) <= MAX_EXTRA_WORDS, extra


def test_beam_search_matches_ctranslate2(onnx_fp32, bundled_ct2_dir, speech_rows):
    """The shared beam search against CTranslate2's, both fp32 on the same weights."""
    _, audio = subset(speech_rows, "en")
    options = runtimes.RuntimeOptions(threads=THREADS)
    decoding = runtimes.DecodingOptions(beam_size=4)
    with runtimes.load(onnx_fp32, options, decoding) as ours, \
            runtimes.load(bundled_ct2_dir, options, decoding) as ct2:
        got = [t.tokens for t in ours.transcribe(audio[:8], batch_size=4)]
        want = [t.tokens for t in ct2.transcribe(audio[:8], batch_size=4)]
    assert sum(g == w for g, w in zip(got, want)) >= 7


def test_batched_greedy_equals_one_by_one(onnx_fp32, speech_rows):
    """Rows that finish early are dropped from the batch; that must not change any text."""
    _, audio = subset(speech_rows, "en")
    with runtimes.load(onnx_fp32, runtimes.RuntimeOptions(threads=THREADS)) as model:
        one = [t.tokens for t in model.transcribe(audio[:8], batch_size=1)]
        eight = [t.tokens for t in model.transcribe(audio[:8], batch_size=8)]
    assert one == eight


def test_iteration_batching_gives_each_window_its_own_greedy_tokens(onnx_fp32, speech_rows):
    """Windows that join a running batch at any step (cache padded on the left and masked),
    with prompts of different lengths, text-only and timestamped (scored) rows side by side,
    decode exactly as each window alone, with the same scores."""
    import time
    from dataclasses import replace

    from runtimes.audio.features import log_mel
    from runtimes.serve.jobs import BatchKey, WindowJob
    from runtimes.serve.stepper import IterationBatcher

    _, audio = subset(speech_rows, "en")
    with runtimes.load(onnx_fp32, runtimes.RuntimeOptions(threads=THREADS)) as model:
        runtime, tokenizer = model.runtime, model.tokenizer
        windows = [log_mel(a[:480000]) for a in audio[:12]]
        plain = tokenizer.prompt("en", "transcribe")
        stamps = [i % 4 == 1 for i in range(len(windows))]
        prompts = [tokenizer.previous_text("Hello there.") + plain if i % 3 == 0
                   else tokenizer.prompt("en", "transcribe", True) if stamps[i] else plain
                   for i in range(len(windows))]
        alone = [runtime.decode(w[None], [p], replace(model.options, timestamps=s))[0]
                 for w, p, s in zip(windows, prompts, stamps)]
        rows: list[int] = []
        batcher = IterationBatcher(runtime, model.options, runtime.rules, lambda k, p: [],
                                   max_batch=4, max_wait_s=0.0, observe=rows.append)
        batcher.start()
        try:
            futures = []
            for i, (window, prompt) in enumerate(zip(windows, prompts)):
                key = BatchKey("generate", len(prompt), stamps[i])
                futures.append(batcher.submit(key, WindowJob(window, prompt, i)))
                time.sleep(0.02 * (i % 3))  # arrive while others are mid-transcript
            joint = [f.result(timeout=120) for f in futures]
        finally:
            batcher.close()
    assert [d.tokens for d in joint] == [d.tokens for d in alone]
    for got, want, scored in zip(joint, alone, stamps):
        assert scored == (want.avg_logprob == want.avg_logprob)  # nan unless scored
        if scored:
            assert abs(got.avg_logprob - want.avg_logprob) < 1e-3
            assert abs(got.no_speech_prob - want.no_speech_prob) < 1e-3
    assert max(rows) == 4  # the batch filled up
    assert any(later > now for now, later in zip(rows, rows[1:]))  # rows joined a running batch


def test_an_abandoned_row_leaves_the_running_batch(onnx_fp32, speech_rows):
    """A request that gives up (timeout) frees its row at the next step; the others finish."""
    import concurrent.futures
    import time

    from runtimes.audio.features import log_mel
    from runtimes.serve.jobs import BatchKey, WindowJob
    from runtimes.serve.stepper import IterationBatcher

    _, audio = subset(speech_rows, "longform")
    with runtimes.load(onnx_fp32, runtimes.RuntimeOptions(threads=THREADS)) as model:
        runtime = model.runtime
        window = log_mel(audio[0][:480000])  # 30 s of speech: ~100 tokens to decode
        prompt = model.tokenizer.prompt("en", "transcribe")
        alone = runtime.generate(window[None], [prompt], model.options)[0]
        batcher = IterationBatcher(runtime, model.options, runtime.rules, lambda k, p: [],
                                   max_batch=4, max_wait_s=0.0)
        batcher.start()
        try:
            futures = [batcher.submit(BatchKey("generate", len(prompt)),
                                      WindowJob(window, prompt, 0))
                       for _ in range(2)]
            while not futures[0].running():
                time.sleep(0.001)
            batcher.abandon(futures[:1])
            with pytest.raises(concurrent.futures.CancelledError):
                futures[0].result(timeout=60)
            assert futures[1].result(timeout=60).tokens == alone
        finally:
            batcher.close()
    assert len(alone) > 50  # long enough that the abandoned row was cut short


def test_batch_invariance_is_what_the_manifest_says(graph_model, speech_rows):
    """A clip's tokens alone and in a batch of 8 with other clips: equal, as every manifest
    here says. ONNX int8 scales each activation row on its own (exporters.onnx_rows): all 56
    `en` clips for it (with one scale per batch, 18 of them changed)."""
    (target, precision), model = graph_model
    audio = subset(speech_rows, "en")[1]
    audio = audio if (target, precision) == ("onnx", "int8") else audio[:8]
    from runtimes.artifacts.manifest import read_manifest

    assert read_manifest(model.runtime.model_dir).batch_invariant
    alone = [t.tokens for t in model.transcribe(audio, batch_size=1)]
    batched = [t.tokens for t in model.transcribe(audio, batch_size=8)]
    assert batched == alone
