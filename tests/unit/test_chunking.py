import numpy as np

from runtimes.audio.chunking import pack_spans, split_spans, window_audio


def test_spans_pack_without_their_pauses_into_windows_of_at_most_max_len():
    spans = [(0, 10), (12, 20), (25, 40), (41, 45), (60, 70)]
    # speech 10 + 8 + 15 = 33 > 30: the third span starts a window; the pauses do not count
    assert pack_spans(spans, max_len=30) == [((0, 10), (12, 20)), ((25, 40), (41, 45), (60, 70))]


def test_a_span_longer_than_a_window_is_cut_and_no_speech_gives_no_windows():
    assert pack_spans([(0, 70), (71, 75)], max_len=30) == [
        ((0, 30),), ((30, 60),), ((60, 70), (71, 75))]
    assert pack_spans([], max_len=30) == []


def test_a_window_joins_its_spans_and_short_audio_is_one_window():
    samples = np.arange(100, dtype=np.float32)
    joined = window_audio(samples, ((0, 3), (10, 12)))
    assert joined.tolist() == [0, 1, 2, 10, 11]
    assert split_spans(samples) == [((0, 100),)]


def _longform(speech_rows):
    from runtimes.audio.files import load_audio
    from tests.conftest import SPEECH

    row = next(r for r in speech_rows if r["id"] == "ljspeech_LJ001_0001-0032_longform")
    return load_audio(SPEECH / row["path"])


def test_a_recording_of_one_block_is_windowed_as_a_whole(speech_rows):
    """Up to ten minutes nothing changes: the VAD sees the whole recording, as before."""
    from runtimes.audio.chunking import speech_spans

    samples = _longform(speech_rows)  # 233 s
    assert split_spans(samples) == pack_spans(speech_spans(samples))
    assert split_spans(np.zeros(100_000, np.float32)) == []  # silence: nothing to decode


def test_blocks_give_ordered_windows_of_the_recordings_own_samples(speech_rows):
    """Windowed in 60 s blocks, the 233 s recording keeps its speech (within 2% of the
    whole-signal VAD), every window is the recording's samples at its spans, and the size
    of the pieces the audio arrives in changes nothing."""
    from runtimes.audio.chunking import WindowStream, blocks_of
    from runtimes.audio.features import N_SAMPLES

    samples = _longform(speech_rows)
    stream = WindowStream(blocks_of(samples, 7 * 16000), block_samples=60 * 16000)
    windows = list(stream)
    assert stream.n_samples == samples.size
    spans = [span for window, _ in windows for span in window]
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))  # ordered, no overlap
    for window, audio in windows:
        assert audio.size <= N_SAMPLES
        assert np.array_equal(audio, window_audio(samples, window))
    whole = sum(e - s for w in split_spans(samples) for s, e in w)
    assert abs(sum(e - s for s, e in spans) - whole) < 0.02 * whole
    other = WindowStream(blocks_of(samples, 61 * 16000 + 5), block_samples=60 * 16000)
    assert [w for w, _ in other] == [w for w, _ in windows]


def test_a_long_stream_is_windowed_holding_a_block_not_the_recording(speech_rows):
    """20 minutes arriving in 30 s pieces, windowed in 60 s blocks: 77 MB as one float32
    array, and more while the VAD runs on it; streamed, the peak is a few blocks."""
    import tracemalloc

    from runtimes.audio.chunking import WindowStream

    samples = _longform(speech_rows)
    block, piece = 60 * 16000, 30 * 16000

    def blocks():
        for i in range(40):
            start = (i * piece) % (samples.size - piece)
            yield samples[start:start + piece].copy()

    tracemalloc.start()
    stream = WindowStream(blocks(), block_samples=block)
    count = sum(1 for _ in stream)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert stream.n_samples == 40 * piece and count > 30
    assert peak < 45e6, f"{peak / 1e6:.0f} MB"


def test_the_bounded_memory_vad_finds_faster_whispers_spans(speech_rows):
    """runtimes.audio.vad feeds the model 16 s at a time instead of 320 s: same spans."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    from runtimes.audio.chunking import speech_spans
    from runtimes.audio.files import load_audio
    from tests.conftest import SPEECH

    options = VadOptions(max_speech_duration_s=30, min_silence_duration_ms=160, speech_pad_ms=400)
    rows = [r for r in speech_rows if r["subset"] == "longform"] + speech_rows[:3]
    for row in rows:
        samples = load_audio(SPEECH / row["path"])
        expected = [(s["start"], s["end"]) for s in get_speech_timestamps(samples, options)]
        assert speech_spans(samples) == expected, row["id"]
    assert speech_spans(np.zeros(512 * 40, np.float32)) == []  # a whole last frame: padded
