"""openai-style sequential decoding of long recordings (``long_form="sequential"``) on real
tiny.en and the `longform` LibriSpeech recording (147 s, 16 utterances)."""

import numpy as np
import pytest

import runtimes
from bench.metrics import error_rates
from bench.timing import start_errors, summary_ms, true_starts
from tests.conftest import SPEECH
from tests.slow.conftest import THREADS, subset

SEQUENTIAL = runtimes.DecodingOptions(long_form="sequential")


@pytest.fixture(scope="module")
def recording(speech_rows):
    rows, audio = subset(speech_rows, "longform")
    row, samples = next((r, a) for r, a in zip(rows, audio) if r["id"].startswith("librispeech"))
    return row, samples


class Recorder:
    """A loaded runtime that notes each decode call's prompts (and forwards everything)."""

    def __init__(self, runtime):
        self._runtime, self.calls = runtime, []

    def decode(self, features, prompts, *args, **kwargs):
        self.calls.append([list(p) for p in prompts])
        return self._runtime.decode(features, prompts, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._runtime, name)


def check_follows_the_speech(row, result) -> None:
    """Segments in order, each starting where speech starts (median error against the true
    utterance starts, as scripts/timestamp_error.py measures), with a WER close to the VAD
    windows' on the same recording (5-6%)."""
    starts = [s.start for s in result.segments]
    assert starts == sorted(starts) and all(s.end > s.start for s in result.segments)
    assert all(a.end <= b.start + 1e-6 for a, b in zip(result.segments, result.segments[1:]))
    assert result.windows >= 5  # 147 s: at least five 30 s windows
    median, _ = summary_ms(start_errors(true_starts(row["id"], SPEECH), starts))
    assert median < 700
    wer = error_rates([row["reference"]], [result.text], ["en"]).wer
    assert wer < 8.0, result.text


def test_ctranslate2_sequential_segments_follow_the_speech(int8_artifact, recording):
    row, samples = recording
    with runtimes.load(int8_artifact, runtimes.RuntimeOptions(threads=THREADS),
                       SEQUENTIAL) as model:
        check_follows_the_speech(row, model.transcribe([samples])[0])


def test_windows_are_prompted_with_the_text_before_them(onnx_fp32, tinyen_hf, recording):
    """Each window after the first is prompted with <|startofprev|> and the ids kept so far;
    PyTorch (transformers' prompt_ids) decodes exactly the tokens ONNX fp32 does."""
    row, samples = recording
    with runtimes.load(onnx_fp32, runtimes.RuntimeOptions(threads=THREADS), SEQUENTIAL) as model:
        model.runtime = recorder = Recorder(model.runtime)
        onnx = model.transcribe([samples])[0]
        startofprev = model.tokenizer.token_id("<|startofprev|>")
    check_follows_the_speech(row, onnx)
    prompts = [call[0] for call in recorder.calls]
    assert len(prompts) == onnx.windows and startofprev not in prompts[0]
    kept, end = list(onnx.tokens), 0
    for prompt in prompts[1:]:  # the previous text: the ids kept so far, the last 200
        assert prompt[0] == startofprev
        previous = prompt[1:prompt.index(model.tokenizer.sot)]
        end = next(n for n in range(end + 1, len(kept) + 1) if kept[:n][-200:] == previous)
    assert end < len(kept)  # the last window's own ids came after
    with runtimes.load(tinyen_hf, runtimes.RuntimeOptions(threads=THREADS), SEQUENTIAL) as model:
        assert model.transcribe([samples])[0].tokens == onnx.tokens


def test_without_previous_text_recordings_share_batches_and_keep_their_text(onnx_fp32,
                                                                           recording):
    """Without the previous text every prompt has one length, so the windows of several
    recordings are decoded together; each recording's transcript is the one it has alone."""
    _, samples = recording
    options = runtimes.DecodingOptions(long_form="sequential", condition_on_previous_text=False)
    short = samples[:16000 * 70]
    with runtimes.load(onnx_fp32, runtimes.RuntimeOptions(threads=THREADS), options) as model:
        alone = model.transcribe([short])[0]
        model.runtime = recorder = Recorder(model.runtime)
        both = model.transcribe([short, samples], batch_size=8)
    assert both[0].tokens == alone.tokens and both[0].segments == alone.segments
    assert len(recorder.calls[0]) == 2  # the first round: one window of each, one batch
    assert not any(p[0] == model.tokenizer.token_id("<|startofprev|>")
                   for call in recorder.calls for p in call)
    assert np.isclose(both[1].duration_s, samples.size / 16000)
