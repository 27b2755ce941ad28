"""The server's parts that need no model: the dynamic batcher, response formats, settings."""

from __future__ import annotations

import threading
import time

import pytest

from runtimes.audio.files import AudioReport
from runtimes.decode.fallback import compression_ratio
from runtimes.errors import OptionError
from runtimes.serve.batcher import DynamicBatcher
from runtimes.serve.config import ServeConfig
from runtimes.serve.engine import Segment, ServedResult
from runtimes.serve.formats import verbose_json
from runtimes.transcript.formats import clock, srt, vtt


def _batcher(max_batch: int, max_wait_s: float, gate: threading.Event | None = None):
    calls: list[tuple[object, list]] = []

    def run(key, payloads):
        if gate is not None:
            gate.wait(5)
        calls.append((key, list(payloads)))
        return [p * 10 for p in payloads]

    return DynamicBatcher(run, max_batch, max_wait_s), calls


def test_concurrent_jobs_share_one_call_and_get_their_own_results():
    batcher, calls = _batcher(max_batch=8, max_wait_s=0.5)
    futures = [batcher.submit("k", i) for i in range(5)]  # all queued before the worker starts
    batcher.start()
    assert [f.result(5) for f in futures] == [0, 10, 20, 30, 40]
    assert calls == [("k", [0, 1, 2, 3, 4])]
    batcher.close()


def test_batches_never_exceed_max_batch_and_keys_never_mix():
    batcher, calls = _batcher(max_batch=3, max_wait_s=0.2)
    futures = [batcher.submit("a" if i % 2 else "b", i) for i in range(10)]
    batcher.start()
    for f in futures:
        f.result(5)
    assert all(len(p) <= 3 for _, p in calls)
    assert all({i % 2 for i in p} == {1 if key == "a" else 0} for key, p in calls)
    assert sorted(i for _, p in calls for i in p) == list(range(10))
    batcher.close()


def test_max_batch_one_runs_jobs_one_at_a_time():
    batcher, calls = _batcher(max_batch=1, max_wait_s=0.0)
    futures = [batcher.submit("k", i) for i in range(4)]
    batcher.start()
    assert [f.result(5) for f in futures] == [0, 10, 20, 30]
    assert [len(p) for _, p in calls] == [1, 1, 1, 1]
    batcher.close()


def test_a_lone_job_waits_at_most_max_wait():
    batcher, _ = _batcher(max_batch=8, max_wait_s=0.05)
    batcher.start()
    started = time.monotonic()
    assert batcher.submit("k", 1).result(5) == 10
    assert time.monotonic() - started < 2.0  # not held until the batch fills
    batcher.close()


def test_cancelled_jobs_are_dropped_and_errors_reach_every_job_of_the_batch():
    gate = threading.Event()
    batcher, calls = _batcher(max_batch=1, max_wait_s=0.0, gate=gate)
    batcher.start()
    first = batcher.submit("k", 1)  # occupies the worker until the gate opens
    time.sleep(0.1)
    dropped = batcher.submit("k", 2)
    assert dropped.cancel()
    gate.set()
    assert first.result(5) == 10
    batcher.close()
    assert [p for _, p in calls] == [[1]]

    def fail(key, payloads):
        raise RuntimeError("model broke")

    broken = DynamicBatcher(fail, 4, 0.2)
    futures = [broken.submit("k", i) for i in range(3)]
    broken.start()
    for f in futures:
        with pytest.raises(RuntimeError, match="model broke"):
            f.result(5)
    broken.close()


def test_close_fails_waiting_jobs_and_refuses_new_ones():
    gate = threading.Event()
    batcher, _ = _batcher(max_batch=1, max_wait_s=0.0, gate=gate)
    batcher.start()
    batcher.submit("k", 1)
    time.sleep(0.1)
    waiting = batcher.submit("k", 2)
    gate.set()
    batcher.close()
    if not waiting.done() or waiting.exception(0) is not None:
        with pytest.raises(RuntimeError, match="shutting down"):
            waiting.result(1)
    with pytest.raises(RuntimeError, match="closed"):
        batcher.submit("k", 3)


def test_timestamps_and_subtitle_formats():
    assert clock(3723.456, ",") == "01:02:03,456"
    assert clock(0.0005, ".") == "00:00:00.000"
    segments = (Segment(0.0, 29.5, "Hello there.", (1, 2)), Segment(29.5, 31.0, "", ()),
                Segment(31.0, 40.25, "Bye.", (3,)))
    assert srt(segments) == ("1\n00:00:00,000 --> 00:00:29,500\nHello there.\n\n"
                             "2\n00:00:31,000 --> 00:00:40,250\nBye.\n")
    assert vtt(segments).startswith("WEBVTT\n\n00:00:00.000 --> 00:00:29.500\nHello there.\n")
    result = ServedResult("Hello there. Bye.", "de", 40.25, segments, AudioReport(40.25, 40.3, 2))
    body = verbose_json(result, "transcribe")
    assert body["language"] == "german" and body["duration"] == 40.25
    assert body["declared_duration"] == 40.3 and body["skipped_frames"] == 2
    assert [s["start"] for s in body["segments"]] == [0.0, 29.5, 31.0]
    assert body["segments"][0]["tokens"] == [1, 2]


def test_compression_ratio_flags_repetition():
    assert compression_ratio("the cat sat on the mat") < 1.5
    assert compression_ratio("thank you " * 40) > 2.4


@pytest.mark.parametrize("field, value, message", [
    ("max_batch_size", 0, "max_batch_size must be a finite number >= 1, got 0"),
    ("max_wait_ms", -1, "max_wait_ms must be a finite number >= 0"),
    ("max_queue", 0, "max_queue must be a finite number >= 1"),
    ("max_upload_mb", 0, "max_upload_mb must be a finite number > 0"),
    ("timeout_s", -5, "timeout_s must be a finite number > 0"),
    ("api_key", " ", "api_key is empty"),
    ("batching", "fast", "batching 'fast' is not one of steps, windows"),
])
def test_bad_server_settings_are_named(field, value, message):
    with pytest.raises(OptionError, match=message):
        ServeConfig("m", **{field: value})


@pytest.mark.parametrize("field", ["timeout_s", "max_upload_mb", "max_audio_s", "max_wait_ms"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1.0])
def test_server_numbers_must_be_finite_and_in_range(field, value):
    with pytest.raises(OptionError, match=f"{field} must be a finite number"):
        ServeConfig("m", **{field: value})


def test_the_one_step_filters_picks_scores_appends_and_stops():
    """``runtimes.decode.step.choose``: the step the offline loops and the stepper share."""
    import numpy as np

    from runtimes.decode.step import avg_logprob, choose, most_likely

    logits = np.log(np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]]))
    histories = [[], [1], [1, 1]]

    def ban_first(found, _histories):
        found[:, 0] = -np.inf  # a filter: token 0 is suppressed

    choice = choose(logits.copy(), histories, ban_first, most_likely, eot=2, max_new_tokens=2,
                    alive=np.array([True, True, False]), scored=np.array([True, False, True]))
    assert choice.tokens.tolist() == [1, 1, 2]  # the filter acted; a dead row gets eot
    assert histories == [[1], [1, 1], [1, 1]]
    assert choice.ended.tolist() == [False, True, True]  # max length; eot
    assert abs(choice.logprobs[0] - np.log(0.2 / 0.3)) < 1e-12 and choice.logprobs[1:].tolist() == [0, 0]
    assert avg_logprob(-3.0, 2) == -1.0
