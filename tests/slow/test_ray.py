"""Ray: ``python -m runtimes.batch`` on a real local Ray (one for the module, started as
``ray.init(num_cpus=2)``; the job joins it as it would join a cluster) and
``python -m runtimes.serve --ray`` as the real command, its own local Ray, two replicas,
bundled tiny.en as a CTranslate2 int8 artifact, real clips."""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import MANIFEST, SPEECH

ray = pytest.importorskip("ray", reason="the 'ray' extra is not installed")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield
    ray.shutdown()


def _batch(capsys, *args) -> tuple[int, str]:
    from runtimes.batch.__main__ import main

    code = main([*map(str, args)])
    return code, capsys.readouterr().err


def _rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def _kill_an_actor_once_it_has_written(out: Path, done: threading.Event) -> list[int]:
    """SIGKILL the transcribing actors' processes once a few files are written: a crash."""
    killed: list[int] = []
    while not done.is_set() and not killed:
        written = (out / "results.jsonl").read_text().count("\n") if (
            out / "results.jsonl").is_file() else 0
        if written >= 4:
            for pid in _actor_pids("MapBatches(Transcribe)"):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
        time.sleep(0.05)
    return killed


def _actor_pids(name: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if command.startswith("ray::") and name in command:
            found.append(int(entry.name))
    return found


def _first_rows(manifest: Path, subset: str, count: int, out: Path) -> Path:
    """A manifest of the first ``count`` rows of ``subset``, paths made absolute (16 clips
    are 4 calls of 4 files: enough for an actor to die mid-job, at a third of the time)."""
    lines = manifest.read_text().splitlines()
    header = lines[0].split("\t")
    path, column = header.index("path"), header.index("subset")
    rows = [line.split("\t") for line in lines[1:]]
    rows = [r for r in rows if r[column] == subset][:count]
    for r in rows:
        r[path] = str(manifest.parent / r[path])
    out.write_text("\n".join(["\t".join(header), *("\t".join(r) for r in rows)]) + "\n")
    return out


def test_batch_job_matches_the_cli_survives_a_corrupt_file_and_a_killed_actor(
        local_ray, int8_artifact, tmp_path, capsys):
    """16 en clips from a manifest plus a corrupt file: every clip's text and segments
    equal ``python -m runtimes --format json``'s, the corrupt file is recorded with its
    error, and the actors killed mid-job are restarted with no file lost or written twice;
    a rerun then skips every finished file and retries the failed one."""
    from runtimes.__main__ import main as cli
    from runtimes.batch.inputs import list_inputs

    manifest = _first_rows(MANIFEST, "en", 16, tmp_path / "en16.tsv")
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF" + os.urandom(2000))
    out = tmp_path / "out"
    done = threading.Event()
    killer = concurrent.futures.ThreadPoolExecutor(1).submit(
        _kill_an_actor_once_it_has_written, out, done)
    # two one-CPU actors take both of the local Ray's CPUs: decoding must still be scheduled
    code, log = _batch(capsys, int8_artifact, manifest, corrupt, "--subset", "en", "--out", out,
                       "--actors", "2", "--threads", "1", "--files-per-call", "4")
    done.set()
    assert killer.result(), "the job ended before an actor could be killed"
    assert code == 1, log  # some file failed
    rows = _rows(out)
    paths = [r["path"] for r in rows]
    clips = [str(p) for p in list_inputs([str(manifest)], ["en"])]
    assert len(clips) == 16 and len(paths) == len(set(paths)) and sorted(paths) == clips
    failures = [json.loads(x) for x in (out / "failures.jsonl").read_text().splitlines()]
    assert [(f["path"], f["stage"]) for f in failures] == [(str(corrupt.resolve()), "decode")]
    assert failures[0]["error"]
    import pyarrow.parquet as pq

    table = pq.read_table(out / "parquet")
    assert sorted(table.column("path").to_pylist()) == clips
    assert table.num_rows == len(rows)

    assert cli([str(int8_artifact), *clips, "--format", "json", "--threads", "2"]) == 0
    plain = {j["file"]: j for j in map(json.loads, capsys.readouterr().out.splitlines())}
    fields = ("start", "end", "text", "temperature", "avg_logprob", "no_speech_prob")
    for row in rows:  # the CLI's json is OpenAI's verbose_json; the rows keep their own shape
        cli_segments = [{k: s[k] for k in fields} for s in plain[row["path"]]["segments"]]
        assert row["text"] == plain[row["path"]]["text"], row["path"]
        assert [{k: s[k] for k in fields} for s in row["segments"]] == cli_segments, row["path"]
        assert row["runtime"] == "ctranslate2" and row["precision"] == "int8_float32"

    code, log = _batch(capsys, int8_artifact, manifest, corrupt, "--subset", "en", "--out", out,
                       "--threads", "2")
    assert code == 1 and f"{len(clips)} already done, 1 failed" in log, log
    assert _rows(out) == rows


def test_a_damaged_mp3_is_transcribed_whole_and_its_row_says_what_was_skipped(
        local_ray, int8_artifact, tmp_path, capsys):
    """Issue 32: the batch job records, per file, the decoded and declared durations and the
    damaged frames it skipped (the MP3 with 400 random bytes in the middle)."""
    from tests.media import damaged_mp3

    manifest = _first_rows(MANIFEST, "en", 2, tmp_path / "en2.tsv")
    damaged = damaged_mp3(tmp_path / "damaged.mp3")
    out = tmp_path / "out"
    code, log = _batch(capsys, int8_artifact, damaged, manifest, "--out", out, "--threads", "2")
    assert code == 0, log
    rows = {r["path"]: r for r in _rows(out)}
    assert len(rows) == 3
    row = rows[str(damaged.resolve())]
    assert row["skipped_frames"] == 1 and row["declared_s"] == 11.0 and row["duration_s"] > 10.9
    assert row["text"].rstrip(".").endswith("what you can do for your country")
    assert all(r["skipped_frames"] == 0 for path, r in rows.items() if path != row["path"])


def _as_a_terminal_job() -> None:
    """Give the child SIGINT's default disposition, as a terminal's foreground job has.

    A shell starts a background command (``cmd &``, as CI runners and scripts often do)
    with SIGINT ignored, and children inherit that: Python then installs no
    KeyboardInterrupt handler at all: the signal is lost and the job finishes with exit 0,
    whatever the toolkit does. Without this, a suite started in the background fails here."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_stops_a_batch_job_in_one_line_and_a_rerun_finishes_it(local_ray, int8_artifact,
                                                                       tmp_path, capsys):
    """Issue 32: SIGINT ended the job with a KeyboardInterrupt traceback. Now: one line,
    exit 130, the rows written are kept, and a rerun transcribes the rest."""
    import subprocess
    import sys

    # two short clips and one long-form recording (many seconds on one thread), so the job
    # is still at work when the signal comes once the dataset runs
    manifest = _first_rows(MANIFEST, "en", 2, tmp_path / "en2.tsv")
    long = _first_rows(MANIFEST, "longform", 1, tmp_path / "long.tsv")
    out = tmp_path / "out"
    args = [int8_artifact, manifest, long, "--out", out, "--threads", "1"]
    job = subprocess.Popen([sys.executable, "-m", "runtimes.batch", *map(str, args),
                            "--files-per-call", "1"], stderr=subprocess.PIPE, text=True,
                           start_new_session=True,  # its own group, as a terminal's job
                           preexec_fn=_as_a_terminal_job)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(job.stderr), daemon=True)
    reader.start()
    deadline = time.monotonic() + 180
    while not any("Running Dataset" in line for line in lines):
        assert job.poll() is None and time.monotonic() < deadline, "".join(lines)
        time.sleep(0.05)
    time.sleep(1.0)
    os.killpg(job.pid, signal.SIGINT)  # what Ctrl-C sends: the whole foreground group
    job.wait(timeout=120)
    reader.join(timeout=10)
    err = "".join(lines)
    assert job.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert "interrupted: the files already in" in err and "run the same command again" in err
    kept = _rows(out) if (out / "results.jsonl").is_file() else []
    assert len(kept) < 3

    code, log = _batch(capsys, *args)
    assert code == 0 and f"{len(kept)} already done, 0 failed" in log, log
    assert len(_rows(out)) == 3


def test_batch_job_refuses_bad_input_before_any_work(local_ray, int8_artifact, tmp_path,
                                                     capsys):
    jfk = SPEECH / "jfk" / "jfk.flac"
    out = tmp_path / "out"
    cases = [
        (["--address", "127.0.0.1:9"], "no Ray cluster answers there"),
        (["--address", "nonsense"], "is not auto, HOST:PORT"),
        (["--actors", "0"], "actors must be a count >= 1"),
        (["--actors", "3", "2"], "actors must be a count >= 1 (or MIN <= MAX)"),
    ]
    for extra, message in cases:
        started = time.monotonic()
        code, log = _batch(capsys, int8_artifact, jfk, "--out", out, *extra)
        assert code == 2 and log.startswith("error: ") and message in log, (extra, log)
        assert time.monotonic() - started < 15 and not out.exists()
    code, log = _batch(capsys, int8_artifact, tmp_path / "nothing-*.wav", "--out", out)
    assert code == 2 and "matches no audio file" in log and not out.exists()
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "artifact.json").write_text("{}")
    code, log = _batch(capsys, broken, jfk, "--out", out)
    assert code == 2 and log.startswith("error: ") and not out.exists(), log

    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    code, log = _batch(capsys, int8_artifact, jfk, "--out", other)
    assert code == 2 and "not a batch job's results" in log
    assert sorted(p.name for p in other.iterdir()) == ["notes.txt"]


def test_a_packed_batch_job_gives_the_clis_packed_transcripts(local_ray, int8_artifact,
                                                              onnx_int8, tmp_path, capsys):
    """``--pack``: short clips of an actor call share windows, as ``python -m runtimes
    --pack`` packs them (same texts); packing is part of the job's identity; an artifact
    that cannot align is refused before any work."""
    from runtimes.__main__ import main as cli
    from runtimes.batch.inputs import list_inputs

    manifest = _first_rows(MANIFEST, "en", 6, tmp_path / "en6.tsv")
    clips = [str(p) for p in list_inputs([str(manifest)], ["en"])]
    out = tmp_path / "out"
    code, log = _batch(capsys, int8_artifact, manifest, "--subset", "en", "--out", out,
                       "--threads", "2", "--files-per-call", "6", "--pack")
    assert code == 0 and "6 files transcribed" in log, log
    assert cli([str(int8_artifact), *clips, "--format", "json", "--threads", "2",
                "--pack"]) == 0
    packed = {j["file"]: j["text"] for j in map(json.loads, capsys.readouterr().out.splitlines())}
    assert {r["path"]: r["text"] for r in _rows(out)} == packed

    code, log = _batch(capsys, int8_artifact, manifest, "--subset", "en", "--out", out,
                       "--threads", "2")
    assert code == 2 and "holds another job's results" in log and "pack" in log, log
    code, log = _batch(capsys, onnx_int8, manifest, "--out", tmp_path / "onnx", "--pack")
    assert code == 2 and "cannot align words" in log and not (tmp_path / "onnx").exists(), log


def test_a_directory_of_another_jobs_results_is_refused(local_ray, int8_artifact, tmp_path,
                                                         capsys):
    jfk = SPEECH / "jfk" / "jfk.flac"
    out = tmp_path / "out"
    code, log = _batch(capsys, int8_artifact, jfk, "--out", out, "--threads", "2")
    assert code == 0 and "1 files transcribed" in log, log
    before = (out / "results.jsonl").read_bytes()
    code, log = _batch(capsys, int8_artifact, jfk, "--out", out, "--beam-size", "2")
    assert code == 2 and "holds another job's results" in log and "decoding" in log
    assert (out / "results.jsonl").read_bytes() == before


# ---- Ray Serve -----------------------------------------------------------------------------

def test_serve_on_ray_answers_the_openai_client_from_two_replicas_and_sheds_overload(
        int8_artifact, speech_rows):
    """Two replicas behind Serve's proxy: the API key and the upload limit hold, the official
    client gets the pipeline's text, both replicas answer, a burst beyond what the replicas
    and the proxy's queue admit gets 503 with Retry-After, and the service answers again
    afterwards."""
    from openai import OpenAI

    import runtimes
    from runtimes.serve.launch import start_server

    jfk = SPEECH / "jfk" / "jfk.flac"
    from tests.slow.test_serve import SERVER_DEFAULTS

    with runtimes.load(int8_artifact, runtimes.RuntimeOptions(threads=1),
                       SERVER_DEFAULTS) as model:
        expected = model.transcribe([jfk])[0].text
    longest = max((r for r in speech_rows if r["subset"] == "en"),
                  key=lambda r: float(r["duration_s"]))
    with start_server(int8_artifact, "--ray", "--replicas", "2", "--max-queue", "1",
                      "--max-batch-size", "1", "--api-key", "k", "--max-upload-mb", "3",
                      start_timeout_s=240) as server:
        client = OpenAI(base_url=server.url + "/v1", api_key="k", max_retries=0)
        assert httpx.get(server.url + "/v1/models").status_code == 401  # the app's own guards
        too_large = httpx.post(server.url + "/v1/audio/transcriptions", timeout=60,
                               headers={"Authorization": "Bearer k"},
                               files={"file": ("big.wav", b"\0" * (4 * 1024 * 1024))})
        assert too_large.status_code == 413, too_large.text
        with open(jfk, "rb") as f:
            assert client.audio.transcriptions.create(model="whisper-1", file=f).text == expected
        replicas = {httpx.get(server.url + "/health").json()["replica"] for _ in range(20)}
        assert len(replicas) == 2

        def post(_):
            return httpx.post(server.url + "/v1/audio/transcriptions", timeout=120,
                              headers={"Authorization": "Bearer k"},
                              files={"file": ("clip.flac", (SPEECH / longest["path"]).read_bytes())})

        with concurrent.futures.ThreadPoolExecutor(12) as pool:
            responses = list(pool.map(post, range(12)))
        statuses = [r.status_code for r in responses]
        assert 200 in statuses and 503 in statuses and set(statuses) <= {200, 503}, statuses
        assert all(r.headers["retry-after"] == "1" for r in responses if r.status_code == 503)
        with open(jfk, "rb") as f:
            assert client.audio.transcriptions.create(model="whisper-1", file=f).text == expected
        assert server.process.poll() is None, server.log()
    assert server.process.returncode == 0, server.log()  # SIGTERM: a graceful stop


def test_serve_on_ray_refuses_bad_scaling_before_starting_ray(int8_artifact, tmp_path):
    import subprocess
    import sys

    def serve(*args):
        return subprocess.run([sys.executable, "-m", "runtimes.serve", *map(str, args)],
                              capture_output=True, text=True, timeout=60)

    for args, message in [(["--ray", "--replicas", "0"], "--replicas must be >= 1"),
                          (["--ray", "--autoscale", "2", "1"], "1 <= MIN <= MAX"),
                          (["--replicas", "2"], "need --ray"),
                          (["--ray", "--address", "127.0.0.1:9"], "no Ray cluster answers")]:
        result = serve(int8_artifact, *args)
        assert result.returncode == 2 and result.stderr.startswith("error: "), result.stderr
        assert message in result.stderr, result.stderr
    result = serve(tmp_path, "--ray")
    assert result.returncode == 2 and result.stderr.startswith("error: ")
