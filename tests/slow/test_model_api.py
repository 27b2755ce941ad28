"""faster-whisper's Python API on the toolkit's artifacts (``runtimes.WhisperModel``): its
README examples with only the import changed, on a CTranslate2 int8 and an ONNX int8
artifact of real tiny.en; segments equal to the pipeline's; a generator that does no
decoding until iterated; every kind of audio input."""

from __future__ import annotations

import contextlib
import io
import textwrap

import numpy as np
import pytest

import runtimes
from runtimes.audio.files import load_audio
from runtimes.errors import OptionError
from runtimes.model_options import TranscriptionOptions, decoding_of
from tests.conftest import SPEECH

pytestmark = pytest.mark.slow

JFK_MP3 = SPEECH / "jfk" / "jfk.mp3"

@pytest.fixture(scope="module")
def long_audio(en_clips) -> np.ndarray:
    """About 50 s of real speech in one array: several windows either way, at a third of
    the cost of a `longform` recording."""
    return np.concatenate([load_audio(SPEECH / row["path"]) for row in en_clips[:8]])

#: faster-whisper's README usage, as its users have it; only the import line differs (and
#: the model: an artifact directory, since no hub is reachable here).
README = '''
from runtimes import WhisperModel, BatchedInferencePipeline

model = WhisperModel(model_size, device="cpu", compute_type="int8")

segments, info = model.transcribe("{audio}", beam_size=5)
print("Detected language '%s' with probability %f" % (info.language, info.language_probability))
for segment in segments:
    print("[%.2fs -> %.2fs] %s" % (segment.start, segment.end, segment.text))

segments, _ = model.transcribe("{audio}")
segments = list(segments)  # The transcription will actually run here.

segments, _ = model.transcribe("{audio}", word_timestamps=True)
for segment in segments:
    for word in segment.words:
        print("[%.2fs -> %.2fs] %s" % (word.start, word.end, word.word))

segments, _ = model.transcribe("{audio}", vad_filter=True)
segments, _ = model.transcribe(
    "{audio}", vad_filter=True, vad_parameters=dict(min_silence_duration_ms=500))
print("vad:", " ".join(segment.text for segment in segments))

batched_model = BatchedInferencePipeline(model=model)
segments, info = batched_model.transcribe("{audio}", batch_size=16)
for segment in segments:
    print("batched: [%.2fs -> %.2fs] %s" % (segment.start, segment.end, segment.text))
'''


@pytest.fixture(scope="module", params=["ct2", "onnx"])
def artifact(request):
    return request.getfixturevalue("int8_artifact" if request.param == "ct2"
                                   else "onnx_int8_words")


def test_faster_whispers_readme_examples_run_with_only_the_import_changed(artifact):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(textwrap.dedent(README.format(audio=JFK_MP3)), {"model_size": str(artifact)})
    lines = out.getvalue().lower().splitlines()
    assert lines[0] == "detected language 'en' with probability 1.000000"
    assert lines[1].startswith("[0.00s -> ") and "ask not what your country" in lines[1]
    words = [line.split("] ")[1] for line in lines if line.startswith("[") and " -> " in line
             and len(line.split("] ")[1].split()) == 1]
    assert {"ask", "country."} <= {w.strip() for w in words}, lines
    assert any(line.startswith("vad:") and "ask not what" in line for line in lines)
    assert any(line.startswith("batched: [0.00s") for line in lines)


@pytest.mark.parametrize("options", [
    {"beam_size": 5},
    {"word_timestamps": True, "condition_on_previous_text": False},
    {"vad_filter": True, "initial_prompt": "Recorded speeches."},
])
def test_segments_equal_the_pipelines_for_the_same_options(artifact, options, long_audio):
    """The generator is the pipeline's core, window by window: a long recording's
    segments are the pipeline's, whole (times, text, tokens, words)."""
    with runtimes.WhisperModel(str(artifact), cpu_threads=2) as model:
        segments, info = model.transcribe(long_audio, **options)
        got = list(segments)
    decoding = decoding_of(TranscriptionOptions.of(options), "en", "transcribe")
    with runtimes.load(artifact, runtimes.RuntimeOptions(threads=2), decoding) as pipeline:
        want = pipeline.transcribe([long_audio])[0].segments
    assert [(s.start, s.end, s.text, tuple(s.tokens)) for s in got] == [
        (s.start, s.end, s.text, s.tokens) for s in want]
    if options.get("word_timestamps"):
        assert [[(w.start, w.word) for w in s.words] for s in got] == [
            [(w.start, w.word) for w in s.words] for s in want]
    assert [s.id for s in got] == list(range(1, len(got) + 1))
    assert info.duration == long_audio.size / 16000 and len({s.seek for s in got}) > 1
    assert (info.duration_after_vad < info.duration) == bool(options.get("vad_filter"))


def test_segments_do_no_work_until_iterated_and_stop_when_the_loop_stops(int8_artifact,
                                                                       long_audio):
    with runtimes.WhisperModel(str(int8_artifact), cpu_threads=2) as model:
        calls = []
        decode = model.runtime.decode
        model.runtime.decode = lambda *a, **k: calls.append(1) or decode(*a, **k)
        for options in ({}, {"vad_filter": True}):
            calls.clear()
            segments, info = model.transcribe(long_audio, language="en", **options)
            assert calls == [] and info.language == "en"
            first = next(segments)
            assert calls and first.text
            done = len(calls)
            segments.close()  # what breaking out of a for loop does
            assert len(calls) == done


@pytest.mark.parametrize("options", [{}, {"vad_filter": True, "initial_prompt": "Speeches."}])
def test_a_batch_call_equals_the_generator_file_by_file(onnx_fp32, en_clips, options):
    """Many files in one call share batches through the same core; on a batch-invariant
    (fp32) artifact each file's segments and info are ``transcribe``'s for it alone."""
    paths = [str(SPEECH / row["path"]) for row in en_clips[:4]] + [np.zeros(16000, np.float32)]
    with runtimes.WhisperModel(str(onnx_fp32), cpu_threads=2) as model:
        together = model.transcribe_batch(paths, beam_size=1, batch_size=4, **options)
        alone = [model.transcribe(p, beam_size=1, **options) for p in paths]
        alone = [(list(segments), info) for segments, info in alone]
        with pytest.raises(OptionError, match="takes a list of inputs"):
            model.transcribe_batch(paths[0])

    def seen(result):
        segments, info = result
        return ([(s.id, s.start, s.end, s.text, s.words and [w.word for w in s.words])
                 for s in segments], info.duration, info.duration_after_vad)

    assert [seen(r) for r in together] == [seen(r) for r in alone]
    assert all(segments for segments, _ in together[:4]) and together[4][0] == []


def test_hotwords_prompt_every_window_before_its_previous_text(int8_artifact, long_audio):
    """faster-whisper's ``hotwords`` is previous text, not a bias on the logits:
    ``<|startofprev|>``, the hotwords, then the window's previous text, on every window,
    sequential or in VAD windows."""
    with runtimes.WhisperModel(str(int8_artifact), cpu_threads=2) as model:
        prompts = []
        decode = model.runtime.decode
        model.runtime.decode = lambda f, p, *a, **k: prompts.extend(p) or decode(f, p, *a, **k)
        hot = model.tokenizer.text_ids("Kennedy, Berlin")
        start = [model.tokenizer.token_id("<|startofprev|>"), *hot]
        for options in ({}, {"vad_filter": True, "initial_prompt": "Speeches."}):
            prompts.clear()
            segments, _ = model.transcribe(long_audio, beam_size=1, hotwords="Kennedy, Berlin",
                                           **options)
            assert list(segments) and len(prompts) > 1
            assert all(p[:len(start)] == start for p in prompts), prompts[0]
        assert any(len(p) > len(start) + 3 for p in prompts)  # the initial prompt follows


def test_every_kind_of_audio_input_gives_the_same_text(int8_artifact):
    samples = load_audio(JFK_MP3)
    with runtimes.WhisperModel(str(int8_artifact), cpu_threads=2) as model, \
            open(JFK_MP3, "rb") as binary, open(JFK_MP3) as text:
        inputs = [str(JFK_MP3), JFK_MP3, JFK_MP3.read_bytes(), binary, samples,
                  samples.astype(np.float64)]
        texts = {"".join(s.text for s in model.transcribe(x, beam_size=1)[0]) for x in inputs}
        assert len(texts) == 1 and "ask not what your country" in texts.pop().lower()
        for bad, message in [(samples[: samples.size // 2 * 2].reshape(2, -1),
                              "1-D float samples"),
                             ((samples * 32767).astype(np.int16), "1-D float samples"),
                             ([1, 2, 3], "not accepted"),
                             (text, "open it with 'rb'")]:
            with pytest.raises(OptionError, match=message):
                model.transcribe(bad)
    with runtimes.load(int8_artifact) as pipeline:  # a single input is not its characters
        assert len(pipeline.transcribe(str(JFK_MP3))) == 1


def test_what_cannot_be_honoured_is_refused_naming_the_argument(int8_artifact):
    with runtimes.WhisperModel(str(int8_artifact), cpu_threads=2) as model:
        for options, message in [({"prefix": "And so"}, "prefix='And so' is not supported"),
                                 ({"patience": 2.0}, "patience=2.0 is not supported"),
                                 ({"beam_sizes": 5}, "unknown argument 'beam_sizes'"),
                                 ({"vad_filter": True, "vad_parameters": {"min_silence": 1}},
                                  "min_silence: not VAD settings"),
                                 ({"language": "de"}, "English-only")]:
            with pytest.raises(OptionError, match=message):
                model.transcribe(str(JFK_MP3), **options)
        with pytest.raises(OptionError, match="vad_filter=False"):
            runtimes.BatchedInferencePipeline(model).transcribe(str(JFK_MP3), vad_filter=False)
    with pytest.raises(OptionError, match="not a model directory"):
        runtimes.WhisperModel("tiny.en")
    with pytest.raises(OptionError, match="num_workers=2"):
        runtimes.WhisperModel(str(int8_artifact), num_workers=2)


def test_a_model_name_is_exported_once_and_reused(tmp_path, capsys):
    """faster-whisper's ``WhisperModel("tiny.en")``: here ``exporters.WhisperModel``
    exports the bundled checkpoint on first use and loads the same artifact afterwards."""
    from exporters import WhisperModel

    with WhisperModel("tiny.en", device="cpu", compute_type="int8", cpu_threads=2,
                      download_root=str(tmp_path)) as model:
        assert model.runtime.format == "ctranslate2"
        assert model.runtime.precision == "int8_float32"
        segments, _ = model.transcribe(str(JFK_MP3), beam_size=1)
        assert "ask not what your country" in " ".join(s.text for s in segments).lower()
    assert "exporting tiny.en to ctranslate2 (int8)" in capsys.readouterr().err
    (made,) = tmp_path.iterdir()
    with WhisperModel("tiny.en", device="cpu", compute_type="int8",
                      download_root=str(tmp_path)) as again:
        assert again.model_dir == made
    assert "exporting" not in capsys.readouterr().err
