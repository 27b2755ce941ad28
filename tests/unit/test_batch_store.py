"""The batch job's inputs and output directory, without Ray: what is listed, what a rerun
resumes from, and what is refused."""

from __future__ import annotations

import json

import pytest

from runtimes.batch.inputs import list_inputs
from runtimes.errors import OptionError
from tests.conftest import MANIFEST

pq = pytest.importorskip("pyarrow.parquet", reason="the 'ray' extra (pyarrow) is not installed")

from runtimes.batch.store import ResultStore, read_results  # noqa: E402

JOB = {"artifact": "sha256:abc", "device": "cpu", "precision": None, "decoding": {"beam_size": 1}}


def _row(path: str, words: bool = False) -> dict:
    segment = {"start": 0.0, "end": 1.0, "text": " hi", "temperature": 0.0,
               "avg_logprob": None, "compression_ratio": 0.5, "no_speech_prob": None}
    if words:
        segment["words"] = [{"start": 0.0, "end": 0.5, "word": " hi", "probability": 0.9}]
    return {"path": path, "duration_s": 1.0, "language": "en", "text": " hi",
            "segments": [segment], "windows": 1, "runtime": "ctranslate2",
            "precision": "int8_float32", "seconds": 0.1}


def test_inputs_from_folders_globs_files_and_manifests(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for name in ("a/one.wav", "a/b/two.FLAC", "a/notes.txt", "three.mp3"):
        (tmp_path / name).write_bytes(b"x")
    found = list_inputs([str(tmp_path / "a"), str(tmp_path / "*.mp3"), str(tmp_path / "a/one.wav")])
    assert sorted(p.name for p in found) == ["one.wav", "three.mp3", "two.FLAC"]
    assert found == sorted(found) and all(p.is_absolute() for p in found)
    en = list_inputs([str(MANIFEST)], ["en"])
    both = list_inputs([str(MANIFEST)], ["en", "longform"])
    assert len(en) == 56 and len(both) == 58 and set(en) < set(both)


@pytest.mark.parametrize("inputs, subsets, message", [
    (["{tmp}/missing.wav"], None, "matches no audio file"),
    (["{tmp}/*.ogg"], None, "matches no audio file"),
    (["{tmp}"], None, "matches no audio file"),
    (["{tmp}/x.wav"], ["en"], "needs a manifest .tsv"),
])
def test_inputs_that_match_nothing_are_refused(tmp_path, inputs, subsets, message):
    if subsets:
        (tmp_path / "x.wav").write_bytes(b"x")
    with pytest.raises(OptionError, match=message):
        list_inputs([i.format(tmp=tmp_path) for i in inputs], subsets)


def test_a_path_is_written_once_and_a_rerun_resumes(tmp_path):
    out = tmp_path / "out"
    with ResultStore(out, JOB, flush_every=2) as store:
        assert store.add(_row("/a.wav")) and store.add(_row("/b.wav", words=True))
        assert not store.add(_row("/a.wav"))  # a retried batch delivers it again
        store.add(_row("/c.wav"))
        store.fail("/bad.wav", "decode", "AudioError: not audio")
    assert [r["path"] for r in read_results(out)] == ["/a.wav", "/b.wav", "/c.wav"]
    table = pq.read_table(out / "parquet")
    assert sorted(table.column("path").to_pylist()) == ["/a.wav", "/b.wav", "/c.wav"]
    assert len(list((out / "parquet").glob("part-*.parquet"))) == 2
    assert json.loads((out / "failures.jsonl").read_text())["stage"] == "decode"
    with ResultStore(out, JOB) as store:
        assert store.done == {"/a.wav", "/b.wav", "/c.wav"} and not store.add(_row("/b.wav"))
    assert (out / "failures.jsonl").read_text() == ""  # failures are retried, then rewritten


def test_a_killed_run_loses_only_its_half_written_line(tmp_path):
    """A truncated last JSONL line is cut off (that file is redone), and rows that reached
    JSONL but not Parquet are written to a new part."""
    out = tmp_path / "out"
    with ResultStore(out, JOB, flush_every=100) as store:
        store.add(_row("/a.wav"))
        store.add(_row("/b.wav"))
        store._pending.clear()  # killed before the Parquet part was written
    with open(out / "results.jsonl", "a") as f:
        f.write('{"path": "/c.wav", "dur')
    with ResultStore(out, JOB) as store:
        assert store.done == {"/a.wav", "/b.wav"}
        assert store.add(_row("/c.wav"))
    assert [r["path"] for r in read_results(out)] == ["/a.wav", "/b.wav", "/c.wav"]
    assert sorted(pq.read_table(out / "parquet").column("path").to_pylist()) == [
        "/a.wav", "/b.wav", "/c.wav"]


def test_another_jobs_directory_or_a_foreign_one_is_refused(tmp_path):
    out = tmp_path / "out"
    ResultStore(out, JOB).close()
    with pytest.raises(OptionError, match="holds another job's results .* in decoding"):
        ResultStore(out, {**JOB, "decoding": {"beam_size": 5}})
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "mine.txt").write_text("x")
    with pytest.raises(OptionError, match="not a batch job's results"):
        ResultStore(foreign, JOB)
    with pytest.raises(OptionError, match="is a file"):
        ResultStore(foreign / "mine.txt", JOB)
    assert sorted(p.name for p in foreign.iterdir()) == ["mine.txt"]
