"""The server end to end: the real command on a free loopback port, bundled tiny.en as a
CTranslate2 int8 artifact, the official ``openai`` client, and every protection."""

from __future__ import annotations

import concurrent.futures
import time
from pathlib import Path

import httpx
import pytest

from runtimes.audio.chunking import split_spans
from runtimes.audio.files import SAMPLE_RATE, load_audio
from runtimes.options import FALLBACK_LADDER, DecodingOptions
from runtimes.serve.launch import start_server
from tests.conftest import SPEECH

JFK_WORDS = ("and so my fellow americans ask not what your country can do for you ask what you can "
             "do for your country")
KEY = "test-key"
#: what the server decodes a temperature-0 request with by default: faster-whisper's
#: ladder, timestamped (scores come with timestamped decoding)
SERVER_DEFAULTS = DecodingOptions(timestamps=True, temperature=FALLBACK_LADDER)


@pytest.fixture(scope="module")
def jfk_text(int8_artifact, jfk) -> str:
    """What the pipeline itself transcribes with the server's defaults (the fallback ladder,
    so timestamped, scored decoding): the server must return exactly that (the int8
    artifact's punctuation may differ from PyTorch's, its words may not)."""
    import runtimes
    from bench.metrics import normalizer

    with runtimes.load(int8_artifact, runtimes.RuntimeOptions(threads=2),
                       SERVER_DEFAULTS) as model:
        text = model.transcribe([jfk])[0].text
    assert normalizer("en")(text) == JFK_WORDS
    return text


@pytest.fixture(scope="module")
def server(int8_artifact):
    with start_server(int8_artifact, "--api-key", KEY, "--max-upload-mb", "3",
                      "--threads", "2") as running:
        yield running
        assert running.process.poll() is None, running.log()  # it survived every test


@pytest.fixture(scope="module")
def client(server):
    from openai import OpenAI

    return OpenAI(base_url=server.url + "/v1", api_key=KEY, max_retries=0)


def _post(server, path: Path | None = None, data: bytes | None = None, key: str | None = KEY,
          **fields) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    content = data if data is not None else path.read_bytes()
    return httpx.post(server.url + "/v1/audio/transcriptions", headers=headers, timeout=120,
                      data={"model": "whisper-1", **fields},
                      files={"file": ((path.name if path else "upload.bin"), content)})


def _assert_openai_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["message"] and "type" in error
    assert "Traceback" not in response.text


def test_openai_client_json_and_text(client, jfk, jfk_text):
    with open(jfk, "rb") as f:
        result = client.audio.transcriptions.create(model="whisper-1", file=f)
    assert result.text == jfk_text
    with open(jfk, "rb") as f:
        text = client.audio.transcriptions.create(model="whisper-1", file=f,
                                                  response_format="text")
    assert text.strip() == jfk_text


def test_openai_client_srt_and_verbose_json_with_segment_timestamps(client, jfk, jfk_text):
    """Subtitles and verbose_json carry Whisper's own segments (timestamp tokens)."""
    from bench.metrics import normalizer

    with open(jfk, "rb") as f:
        srt = client.audio.transcriptions.create(model="whisper-1", file=f, response_format="srt")
    assert srt.startswith("1\n00:00:00,000 --> 00:00:08,000\nAnd so my fellow Americans")
    assert "\n2\n00:00:08,000 --> 00:00:11,000\nask what you can do" in srt
    with open(jfk, "rb") as f:
        verbose = client.audio.transcriptions.create(
            model="whisper-1", file=f, response_format="verbose_json",
            timestamp_granularities=["segment"])
    english = normalizer("en")
    assert english(verbose.text) == english(jfk_text) and verbose.language == "english"
    assert verbose.duration == pytest.approx(11.0, abs=0.01)
    assert [(s.start, s.end) for s in verbose.segments] == [(0.0, 8.0), (8.0, 11.0)]
    assert english(" ".join(s.text for s in verbose.segments)) == english(jfk_text)


def test_verbose_json_scores_and_a_sampled_request(server, jfk):
    """Segments carry the window's scores; a temperature above 0 samples (best of 5) and
    says so. (CTranslate2 draws from one generator per worker thread, so its sampled text is
    not reproducible request to request; the graph runtimes' is, tested offline.)"""
    from bench.metrics import normalizer

    greedy = _post(server, jfk, response_format="verbose_json").json()["segments"]
    assert all(s["temperature"] == 0.0 and -1 < s["avg_logprob"] < 0
               and 0 <= s["no_speech_prob"] < 0.1 for s in greedy)
    sampled = _post(server, jfk, response_format="verbose_json", temperature="0.5").json()
    assert all(s["temperature"] == 0.5 and s["avg_logprob"] < 0 for s in sampled["segments"])
    assert "fellow americans" in normalizer("en")(sampled["text"])


def test_openai_client_gets_words_and_segments(client, jfk, int8_artifact):
    """timestamp_granularities=["word", "segment"]: the words of the pipeline's own word
    timestamps, under their segments and in OpenAI's top-level list."""
    import runtimes

    with open(jfk, "rb") as f:
        verbose = client.audio.transcriptions.create(
            model="whisper-1", file=f, response_format="verbose_json",
            timestamp_granularities=["word", "segment"])
    with runtimes.load(int8_artifact, runtimes.RuntimeOptions(threads=2),
                       runtimes.DecodingOptions(word_timestamps=True)) as model:
        offline = [w for s in model.transcribe([jfk])[0].segments for w in s.words]
    assert [(w.word, w.start, w.end) for w in verbose.words] == [
        (w.word.strip(), w.start, w.end) for w in offline]
    assert [w.word for w in verbose.words][:5] == ["And", "so", "my", "fellow", "Americans"]
    assert len(verbose.segments) == 2 and verbose.words[0].start == 0.0


def test_long_upload_gets_whispers_segments_inside_its_speech(server, speech_rows):
    row = next(r for r in speech_rows if r["subset"] == "longform")
    response = _post(server, SPEECH / row["path"], response_format="verbose_json")
    body = response.json()
    segments = body["segments"]
    windows = split_spans(load_audio(SPEECH / row["path"]))
    assert response.status_code == 200 and len(segments) > 2 * len(windows)
    assert all(a["end"] <= b["start"] + 1e-3 for a, b in zip(segments, segments[1:]))
    assert all(s["start"] < s["end"] for s in segments)
    for s in segments:  # every segment lies in the speech of one window (VAD spans)
        assert any(w[0][0] / SAMPLE_RATE - 1e-3 <= s["start"] and
                   s["end"] <= w[-1][1] / SAMPLE_RATE + 1e-3 for w in windows), s
    assert segments[-1]["end"] <= body["duration"] + 0.01


@pytest.mark.parametrize("fields", [
    {"response_format": "json", "timestamp_granularities[]": "word"},
    {"response_format": "json", "timestamp_granularities[]": "segment"},
    {"response_format": "verbose_json", "timestamp_granularities[]": "sentence"},
])
def test_timestamp_granularities_are_checked(server, jfk, fields):
    response = _post(server, jfk, **fields)
    _assert_openai_error(response, 400, "invalid_value")
    assert response.json()["error"]["param"] == "timestamp_granularities"


def test_models_health_metrics(server, client):
    assert [m.id for m in client.models.list()] == ["tiny.en-ct2-int8"]
    assert httpx.get(server.url + "/health").json()["status"] == "ok"
    metrics = httpx.get(server.url + "/metrics", headers={"Authorization": f"Bearer {KEY}"}).text
    for name in ("whisper_http_requests_total", "whisper_errors_total", "whisper_queue_depth",
                 "whisper_batch_size_bucket", "whisper_request_latency_seconds_bucket",
                 "whisper_audio_seconds_total"):
        assert name in metrics


def test_wrong_or_missing_api_key_is_401(server, jfk):
    _assert_openai_error(_post(server, jfk, key="wrong"), 401, "invalid_api_key")
    _assert_openai_error(_post(server, jfk, key=None), 401, "invalid_api_key")
    assert httpx.get(server.url + "/metrics").status_code == 401


def test_oversized_upload_is_413(server):
    _assert_openai_error(_post(server, data=b"\0" * (3 * 1024 * 1024 + 1)), 413, "upload_too_large")


@pytest.mark.parametrize("content", [b"this is not audio at all" * 50, b""])
def test_non_audio_upload_is_400(server, content):
    _assert_openai_error(_post(server, data=content), 400, "invalid_audio")


@pytest.mark.parametrize("fields, param", [
    ({"response_format": "xml"}, "response_format"),
    ({"language": "de"}, "language"),
    ({"temperature": "hot"}, "temperature"),
])
def test_bad_fields_are_400_and_name_the_field(server, jfk, fields, param):
    response = _post(server, jfk, **fields)
    _assert_openai_error(response, 400, "invalid_value")
    assert response.json()["error"]["param"] == param


def test_unknown_route_is_404(server):
    response = httpx.get(server.url + "/v1/nothing", headers={"Authorization": f"Bearer {KEY}"})
    _assert_openai_error(response, 404, "not_found")


def test_server_still_healthy_after_bad_requests(server, client, jfk, jfk_text):
    assert httpx.get(server.url + "/health").status_code == 200
    with open(jfk, "rb") as f:
        assert client.audio.transcriptions.create(model="whisper-1", file=f).text == jfk_text


def test_full_queue_answers_503_and_recovers(int8_artifact, speech_rows):
    row = next(r for r in speech_rows if r["subset"] == "longform")
    with start_server(int8_artifact, "--max-queue", "1", "--max-batch-size", "1",
                      "--threads", "2") as small:
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            responses = list(pool.map(lambda _: _post(small, SPEECH / row["path"], key=None),
                                      range(4)))
        statuses = sorted(r.status_code for r in responses)
        assert 200 in statuses and 503 in statuses and set(statuses) <= {200, 503}
        full = next(r for r in responses if r.status_code == 503)
        _assert_openai_error(full, 503, "queue_full")
        assert full.headers["retry-after"] == "1"
        assert httpx.get(small.url + "/health").json()["in_flight"] == 0


def test_bad_command_line_exits_2_with_a_message(tmp_path):
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "runtimes.serve", str(tmp_path / "missing")],
                            capture_output=True, text=True)
    assert result.returncode == 2 and result.stderr.startswith("error: ")
    result = subprocess.run([sys.executable, "-m", "runtimes.serve", str(tmp_path),
                             "--max-batch-size", "0"], capture_output=True, text=True)
    assert result.returncode == 2 and "max_batch_size must be a finite number >= 1" in result.stderr


def test_subtitles_are_cut_at_word_timestamps(int8_artifact, jfk, onnx_fp32, tmp_path):
    """--max-subtitle-s: srt answers cut Whisper's segments at word times; an artifact that
    cannot align is refused at start-up. With the server's default fallback ladder (OpenAI's
    meaning of temperature 0), 20 s of white noise, which tiny.en decodes plainly into a
    made-up sentence (tests/slow/test_fallback.py), gets no text."""
    import subprocess
    import sys
    import wave

    import numpy as np

    noise = tmp_path / "noise.wav"
    samples = np.random.default_rng(0).normal(0, 0.03, 16000 * 20)
    with wave.open(str(noise), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000)
        w.writeframes((samples * 32767).astype("<i2").tobytes())
    with start_server(int8_artifact, "--threads", "2", "--max-subtitle-s", "5") as running:
        srt = _post(running, jfk, key=None, response_format="srt").text
        stamped = _post(running, jfk, key=None, response_format="verbose_json").json()
        silent = _post(running, noise, key=None).json()
    assert silent == {"text": ""}
    blocks = [b.splitlines() for b in srt.strip().split("\n\n")]
    assert len(blocks) >= 3  # Whisper's 8 s + 3 s segments, the first cut
    for _, times, _ in blocks:
        start, end = (sum(float(x) * m for x, m in zip(t.replace(",", ".").split(":"),
                                                        (3600, 60, 1))) for t in times.split(" --> "))
        assert end - start <= 5.0
    assert " ".join(b[2] for b in blocks) == " ".join(s["text"] for s in stamped["segments"])
    result = subprocess.run([sys.executable, "-m", "runtimes.serve", str(onnx_fp32),
                             "--max-subtitle-s", "5"], capture_output=True, text=True)
    assert result.returncode == 2 and "--word-timestamps" in result.stderr


@pytest.mark.parametrize("artifact", ["int8_artifact", "onnx_fp32"])  # windows, steps
def test_slow_request_gets_504_and_its_work_is_dropped(artifact, speech_rows, request):
    row = next(r for r in speech_rows if r["subset"] == "longform")
    served = request.getfixturevalue(artifact)
    with start_server(served, "--timeout", "0.2", "--threads", "2") as strict:
        response = _post(strict, SPEECH / row["path"], key=None)
        _assert_openai_error(response, 504, "timeout")
        health = httpx.get(strict.url + "/health").json()
        assert health["in_flight"] == 0 and health["status"] == "ok"


def test_graph_artifact_batches_at_every_step_and_serves_the_pipelines_text(onnx_int8,
                                                                            speech_rows):
    """An ONNX artifact is served with iteration-level batching (the CTranslate2 server
    above uses per-batch joining): 8 concurrent requests get the transcripts the pipeline
    gives each clip alone, and decoder steps ran with several rows. ONNX int8, whose
    per-clip scaling is what lets strangers' requests share its batches."""
    import runtimes

    paths = [SPEECH / r["path"] for r in speech_rows if r["subset"] == "en"][:8]
    with runtimes.load(onnx_int8, runtimes.RuntimeOptions(threads=2)) as model:
        alone = [t.text for t in model.transcribe([str(p) for p in paths])]
    stamped = runtimes.DecodingOptions(timestamps=True)
    with runtimes.load(onnx_int8, runtimes.RuntimeOptions(threads=2), stamped) as model:
        alone_stamped = [t for t in model.transcribe([str(p) for p in paths])]
    # Half the requests ask for segments: rows with and without timestamp rules share steps.
    formats = ["json", "verbose_json"] * 4
    # plain greedy (--no-fallback): the test is about rows joining at every step
    with start_server(onnx_int8, "--threads", "2", "--no-fallback") as running:
        assert "joining at every decoder step" in running.log()
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            responses = list(pool.map(
                lambda job: _post(running, job[0], key=None, response_format=job[1]),
                zip(paths, formats)))
        metrics = httpx.get(running.url + "/metrics").text
        words = _post(running, paths[0], key=None, response_format="verbose_json",
                      **{"timestamp_granularities[]": "word"})
    _assert_openai_error(words, 400, "invalid_value")
    assert "--to onnx --word-timestamps" in words.json()["error"]["message"]
    assert [r.status_code for r in responses] == [200] * 8
    assert [r.json()["text"] for r in responses[::2]] == alone[::2]
    for response, expected in zip(responses[1::2], alone_stamped[1::2]):
        body = response.json()
        assert body["text"] == expected.text
        assert [(s["start"], s["end"]) for s in body["segments"]] == [
            (s.start, s.end) for s in expected.segments]
    sizes = dict(line.split(" ", 1) for line in metrics.splitlines()
                 if line.startswith("whisper_batch_size_"))
    assert float(sizes["whisper_batch_size_sum"]) / float(sizes["whisper_batch_size_count"]) > 1


def test_load_test_script_reports_every_mode(onnx_int8, tmp_path):
    """scripts/load_test.py end to end on a few clips: off, steps and windows, no errors;
    ONNX int8 (scaled per clip) batched across requests; its table for the docs."""
    import json
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    out = tmp_path / "load"
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "load_test.py"), str(onnx_int8), "--clients", "2",
         "--limit", "4", "--batching", "steps", "windows", "--threads", "2", "--out", str(out)],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    rows = json.loads((out / "results.json").read_text())
    assert [r["mode"].split(" (")[0] for r in rows] == [
        "batching off", "dynamic batching, joining at every decoder step",
        "dynamic batching, joining per batch"]
    assert all(r["requests"] == 4 and r["errors"] == 0 and r["throughput"] > 0 for r in rows)
    assert rows[0]["mean_batch"] == 1.0 and 0 < rows[1]["server_cores"] <= os.cpu_count() + 0.5
    assert rows[1]["mean_batch"] > 1  # two clients' windows share decoder steps
    assert "| server cores |" in (out / "report.md").read_text()
    from bench.docs import table_page

    table = json.loads((out / "table.json").read_text())
    assert table["run"]["command"].startswith("python scripts/load_test.py ")
    assert len(table["rows"]) == 3 and table["rows"][0][0].startswith("batching off")
    assert "| mode | requests |" in table_page("load", table, {})


def test_a_file_claiming_hours_is_413_after_decoding_little(server):
    from tests.unit.test_audio import _bomb

    rss_mb = _upload_cost().usage
    before = rss_mb(server.process.pid)[0]
    response = _post(server, data=_bomb())  # 21.6 KB claiming 3 h (1 Hz WAV)
    _assert_openai_error(response, 413, "audio_too_long")
    assert "at most 338 s" in response.json()["error"]["message"]
    # It grew the server by 2.46 GB before decoding was bounded; now +31 MB was measured.
    assert rss_mb(server.process.pid)[0] - before < 100
    assert httpx.get(server.url + "/health").json()["status"] == "ok"


def _trickle(url: str, stop) -> int:
    """A client that announces a 1 MB upload and sends one byte every 0.5 s until ``stop``
    is set or the server answers; returns the status line's code (0 if none)."""
    import socket
    from urllib.parse import urlparse

    address = urlparse(url)
    with socket.create_connection((address.hostname, address.port), timeout=30) as sock:
        sock.sendall(b"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: multipart/form-data; boundary=b\r\n"
                     b"Content-Length: 1000000\r\n\r\n--b\r\n")
        sock.settimeout(0.5)
        while not stop.is_set():
            try:
                answer = sock.recv(64)
                return int(answer.split()[1]) if answer else 0
            except TimeoutError:
                sock.sendall(b"x")
    return 0


def test_slow_clients_cannot_lock_out_a_real_request(int8_artifact, jfk, jfk_text):
    """Two clients trickling uploads held both --max-queue slots, and every real request got
    503 (hardening issue, item 4): now an upload takes a slot only once it has arrived, and
    one that does not arrive within --timeout gets 408."""
    import threading

    with start_server(int8_artifact, "--max-queue", "2", "--timeout", "4",
                      "--threads", "2") as small:
        stop = threading.Event()
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            trickling = [pool.submit(_trickle, small.url, stop) for _ in range(2)]
            time.sleep(1.0)  # both are trickling now
            response = _post(small, jfk, key=None)
            assert response.status_code == 200, response.text
            assert response.json()["text"] == jfk_text
            codes = [f.result(timeout=30) for f in trickling]
        stop.set()
        assert codes == [408, 408]


def _errors(server, code: str) -> float:
    metrics = httpx.get(server.url + "/metrics", headers={"Authorization": f"Bearer {KEY}"}).text
    line = f'whisper_errors_total{{code="{code}"}}'
    return next((float(x.split()[-1]) for x in metrics.splitlines() if x.startswith(line)), 0.0)


def test_a_declared_oversize_and_a_vanished_client_are_counted_as_theirs(server):
    import socket
    from urllib.parse import urlparse

    address = urlparse(server.url)
    before = _errors(server, "upload_too_large")
    with socket.create_connection((address.hostname, address.port), timeout=30) as sock:
        sock.sendall(b"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\n"
                     b"Authorization: Bearer " + KEY.encode() + b"\r\n"
                     b"Content-Length: 52428800\r\n\r\n")  # declared, never sent
        assert sock.recv(64).split()[1] == b"413"
    assert _errors(server, "upload_too_large") == before + 1
    internal = _errors(server, "internal_error")
    with socket.create_connection((address.hostname, address.port)) as sock:
        sock.sendall(b"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\n"
                     b"Authorization: Bearer " + KEY.encode() + b"\r\n"
                     b"Content-Type: multipart/form-data; boundary=b\r\n"
                     b"Content-Length: 100000\r\n\r\n--b\r\npartial")
    deadline = time.time() + 10
    while _errors(server, "client_disconnected") == 0 and time.time() < deadline:
        time.sleep(0.1)
    assert _errors(server, "client_disconnected") >= 1
    assert _errors(server, "internal_error") == internal


def test_a_batch_variant_artifact_never_batches_strangers_together(onnx_int8_batch, en_clips):
    """ONNX int8 with one activation scale per batch is batch-variant (its manifest says
    so): the server then batches windows of one request only, so a transcript never
    depends on other clients' audio."""
    out = onnx_int8_batch
    clips = [SPEECH / r["path"] for r in en_clips[:8]]  # one window each
    with start_server(out, "--threads", "2", "--max-batch-size", "8",
                      "--max-wait-ms", "200") as served:
        assert "one request's windows per batch: this precision is batch-variant" in served.log()
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(lambda p: _post(served, p, key=None).status_code, clips))
        assert codes == [200] * 8
        metrics = httpx.get(served.url + "/metrics").text
    count = next(float(x.split()[-1]) for x in metrics.splitlines()
                 if x.startswith("whisper_batch_size_count"))
    ones = next(float(x.split()[-1]) for x in metrics.splitlines()
                if x.startswith('whisper_batch_size_bucket{le="1.0"}'))
    assert count >= 8 and ones == count  # every model call held one window


def _upload_cost():
    """scripts/upload_cost.py as a module (it reads a server's RSS and CPU from /proc)."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
    import upload_cost

    return upload_cost


def test_upload_cost_reports_the_bomb_as_413(int8_artifact, capsys):
    """scripts/upload_cost.py, which measured the README's reliability figures."""
    upload_cost = _upload_cost()
    assert upload_cost.main([str(int8_artifact), "--bomb", "--", "--threads", "2"]) == 0
    row = capsys.readouterr().out.strip().splitlines()[-1].split("|")
    assert row[1].strip() == "bomb-1hz.wav" and row[3].strip() == "413"
    assert upload_cost.main([str(int8_artifact)]) == 2
    assert "nothing to upload" in capsys.readouterr().err


def test_a_damaged_mp3_is_transcribed_whole_and_the_response_says_what_was_skipped(server,
                                                                                   tmp_path):
    """Issue 32: 200 {"text": "And so my fellow Americans ask not why"} for an 11 s clip with
    400 damaged bytes in the middle; the rest was dropped unannounced."""
    from bench.metrics import normalizer
    from tests.media import damaged_mp3

    for response_format in ("json", "text", "verbose_json"):
        response = _post(server, damaged_mp3(tmp_path / "d.mp3"), response_format=response_format)
        assert response.status_code == 200, response.text
        text = response.json()["text"] if "json" in response_format else response.text
        assert normalizer("en")(text) == JFK_WORDS
        assert response.headers["x-audio-skipped-frames"] == "1"
        assert response.headers["x-audio-declared-duration"] == "11.000"
        assert float(response.headers["x-audio-duration"]) > 10.9
    body = response.json()
    assert body["skipped_frames"] == 1 and body["declared_duration"] == 11.0
    # damaged past what skipping frames can cover: refused, never half answered with 200
    broken = damaged_mp3(tmp_path / "broken.mp3", start=0.2, length=40000)
    response = _post(server, broken)
    _assert_openai_error(response, 400, "invalid_audio")
    assert "decodes to 4.86 s of the 11.00 s it declares" in response.json()["error"]["message"]


def test_health_and_models_answer_head_as_probes_send_it(server):
    """Issue 32: HEAD /health and HEAD /v1/models answered 405."""
    auth = {"Authorization": f"Bearer {KEY}"}
    for path in ("/health", "/v1/models", "/metrics"):
        assert httpx.head(server.url + path, headers=auth).status_code == 200, path
    assert httpx.head(server.url + "/health").status_code == 200  # no key, as with GET


def test_an_ogg_claiming_100_hours_is_413_naming_the_uploads_own_size(server, tmp_path):
    """Issue 32 saw a 413 naming 'a 92723-byte file' for a 191,304-byte upload."""
    from tests.media import ogg_claiming

    path = ogg_claiming(tmp_path / "long.ogg", hours=100)
    response = _post(server, path)
    _assert_openai_error(response, 413, "audio_too_long")
    message = response.json()["error"]["message"]
    assert f"a {path.stat().st_size}-byte file" in message and "declares 360000 s" in message


def test_the_default_fallback_catches_a_repetition_loop(int8_artifact, en_clips, tmp_path,
                                                        capsys):
    """Issue 34: plain greedy decoding was the default, and on word-by-word speech it loops
    ("to be used to be used ..."). The server and ``python -m runtimes`` now decode with
    faster-whisper's fallback ladder unless told --no-fallback: the loop is caught (its
    window's text compresses past 2.4 and is decoded again hotter). The CLI's default is
    the same ladder (``runtimes.cli.temperatures``; scripts/golden.py serve checks that the
    two give the same text)."""
    import json

    import runtimes
    from runtimes.__main__ import main
    from tests.media import word_by_word

    clips = [SPEECH / r["path"] for r in en_clips[:4]]
    with runtimes.load(int8_artifact, runtimes.RuntimeOptions(threads=2),
                       DecodingOptions(word_timestamps=True)) as model:
        audio, spoken = word_by_word(model, clips, tmp_path / "words.wav")
    with start_server(int8_artifact, "--threads", "2") as running:
        served = _post(running, audio, key=None).json()["text"]
    assert main([str(int8_artifact), str(audio), "--format", "json", "--threads", "2",
                 "--no-fallback"]) == 0
    greedy = json.loads(capsys.readouterr().out)["text"]
    # the loop, as plain greedy decodes it: one 6-word phrase over and over ("and then you
    # can go to the" 14 times); the ladder's text has none (tiny.en still mishears
    # word-by-word speech: its words are not checked, only that the loop is gone)
    assert _most_repeated(greedy, 6) >= 5 and len(greedy.split()) > 2 * len(spoken.split())
    assert _most_repeated(served, 6) <= 2 and len(served.split()) < len(greedy.split())


def _most_repeated(text: str, n: int) -> int:
    """How often the most frequent run of ``n`` words occurs in ``text``."""
    import collections

    words = text.lower().replace(",", "").replace(".", "").split()
    runs = collections.Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))
    return max(runs.values(), default=0)


def test_verbose_json_segments_equal_the_python_apis_generator(server, int8_artifact,
                                                               speech_rows, tmp_path):
    """The server and ``runtimes.WhisperModel`` decode through one core: a recording of
    several windows gets the same segments from both (the server's defaults are the
    generator's ``beam_size=1, vad_filter=True``: VAD windows, the fallback ladder)."""
    import wave

    import numpy as np

    import runtimes

    clips = [r for r in speech_rows if r["subset"] == "en"][:6]
    audio = np.concatenate([load_audio(SPEECH / r["path"]) for r in clips])
    path = tmp_path / "joined.wav"
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1), f.setsampwidth(2), f.setframerate(SAMPLE_RATE)
        f.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
    served = _post(server, path, response_format="verbose_json", language="en").json()
    with runtimes.WhisperModel(str(int8_artifact), cpu_threads=2) as model:
        segments, _ = model.transcribe(str(path), language="en", beam_size=1, vad_filter=True)
        ours = [(round(s.start, 2), round(s.end, 2), s.text) for s in segments]
    assert len({s["start"] // 30 for s in served["segments"]}) > 1  # several windows
    assert [(round(s["start"], 2), round(s["end"], 2), s["text"])
            for s in served["segments"]] == ours
