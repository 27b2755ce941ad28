"""The CTranslate2 artifact as a deployment unit, and the CTranslate2 import round trip."""

import json
import subprocess
import sys

import numpy as np

import runtimes
from bench.metrics import normalizer
from bench.runner import dir_size_mb
from exporters.ct2_format import read_model_bin
from exporters.sources import resolve
from runtimes.artifacts.manifest import read_manifest
from tests.slow.conftest import subset


def test_int8_artifact_is_small_and_self_contained(int8_artifact, tinyen_hf):
    manifest = read_manifest(int8_artifact)
    assert manifest.precision == "int8_float32"
    assert manifest.source["spec"] == "bundled:tiny.en" and len(manifest.source["sha256"]) == 64
    # The words, not every token: int8 may flip a near-tie such as JFK's "you, ask" into
    # "you. Ask" (seen on this machine kind with today's lock, 11/12 tokens equal).
    norm = normalizer("en")
    assert manifest.parity["passed"]
    assert norm(manifest.parity["artifact_text"]) == norm(manifest.parity["reference_text"])
    assert {"model.bin", "config.json", "tokenizer.json", "preprocessor_config.json"} <= {
        f.path for f in manifest.files}
    ratio = dir_size_mb(int8_artifact) / dir_size_mb(tinyen_hf)
    assert ratio <= 0.30, f"int8 artifact is {ratio:.1%} of the fp32 checkpoint"


def test_cli_export_then_verify(tmp_path):
    out = tmp_path / "a"
    cmd = [sys.executable, "-m", "exporters", "whisper", "--to", "ctranslate2", "--int8",
           "--threads", "2", "-o", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "ctranslate2 int8_float32" in proc.stdout and "[3/4]" in proc.stderr
    verified = subprocess.run([sys.executable, "-m", "exporters", "verify", str(out)],
                              capture_output=True, text=True)
    assert verified.returncode == 0 and "files verified" in verified.stdout
    (out / "tokenizer.json").write_text("{}")
    tampered = subprocess.run([sys.executable, "-m", "exporters", "verify", str(out)],
                              capture_output=True, text=True)
    assert tampered.returncode == 2 and "tokenizer.json" in tampered.stderr


def test_import_round_trip_reproduces_the_bundled_model(bundled_ct2_dir, tmp_path, speech_rows):
    """CTranslate2 (fp16) -> transformers (fp32) -> CTranslate2 (fp32): the same weights,
    so the same greedy tokens as the original faster-whisper directory."""
    from ctranslate2.converters import TransformersConverter

    back = tmp_path / "back"
    TransformersConverter(str(resolve("bundled:tiny.en").hf_dir)).convert(str(back))
    original = read_model_bin(bundled_ct2_dir / "model.bin")
    round_trip = read_model_bin(back / "model.bin")
    for name, value in original.variables.items():
        np.testing.assert_array_equal(value.astype(round_trip.variables[name].dtype),
                                      round_trip.variables[name], err_msg=name)
    (back / "tokenizer.json").write_bytes((bundled_ct2_dir / "tokenizer.json").read_bytes())
    _, audio = subset(speech_rows, "en")
    with runtimes.load(bundled_ct2_dir) as a, runtimes.load(back) as b:
        assert [t.tokens for t in a.transcribe(audio[:6], 6)] == [
            t.tokens for t in b.transcribe(audio[:6], 6)]


def test_import_runs_once_then_comes_from_the_cache(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("WHISPER_EXPORTERS_CACHE", str(tmp_path))
    first = resolve("bundled:tiny.en")
    assert "importing CTranslate2 model" in capsys.readouterr().out
    second = resolve("bundled:tiny.en")
    assert "importing" not in capsys.readouterr().out
    assert first.hf_dir == second.hf_dir and first.hf_dir.is_relative_to(tmp_path)
    assert (first.hf_dir / "generation_config.json").is_file()


def test_bench_produces_the_report(int8_artifact, tmp_path):
    out = tmp_path / "report"
    cmd = [sys.executable, "-m", "bench", str(int8_artifact), "--subset", "en", "--limit", "3",
           "--batch-sizes", "1", "2", "--threads", "2", "--word-agreement", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    report = (out / "report.md").read_text()
    for row in ("pytorch fp32", "ctranslate2 int8_float32", "faster-whisper int8",
                "faster-whisper batched int8"):  # both faster-whisper rows by default
        assert f"| {row} |" in report
    assert "failed" not in report and "start err" not in report  # no known starts in `en`
    lines = (out / "results.jsonl").read_text().splitlines()
    assert len(lines) == 4 and (out / "report.csv").is_file()
    # --word-agreement: word starts against faster-whisper's word_timestamps=True
    assert "| word gap med ms | word gap p90 ms | words matched % |" in report
    rows = {r["name"]: r for r in map(json.loads, lines)}
    assert rows["faster-whisper int8"]["word_reference"]
    for name in ("pytorch fp32", "ctranslate2 int8_float32"):
        assert rows[name]["word_median_ms"] < 200 and rows[name]["words_matched"] > 0.9


def test_bench_measures_segment_start_error_on_recordings_with_known_starts(int8_artifact,
                                                                           tmp_path):
    """The longform recordings' utterance starts are known: the bench decodes them once more
    with timestamps and reports the start error (sequential decoding here)."""
    out = tmp_path / "report"
    cmd = [sys.executable, "-m", "bench", str(int8_artifact), "--subset", "longform",
           "--limit", "1", "--batch-sizes", "1", "--threads", "2", "--pytorch", "none",
           "--faster-whisper", "none", "--faster-whisper-batched", "none", "--long-form",
           "sequential", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    report = (out / "report.md").read_text()
    assert "| start err med ms | start err p90 ms |" in report
    assert "decoded sequentially (openai's seeking, prompted with the previous text)" in report
    row = json.loads((out / "results.jsonl").read_text().splitlines()[0])
    assert row["utterances"] == 16 and 0 < row["start_median_ms"] < 700
    assert row["start_median_ms"] <= row["start_p90_ms"]


def test_transcribe_cli_prints_one_line_per_file(int8_artifact, jfk, tmp_path):
    missing = tmp_path / "missing.wav"
    ok = subprocess.run([sys.executable, "-m", "runtimes", str(int8_artifact), str(jfk)],
                        capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout.startswith(f"{jfk}\tAnd so my fellow Americans")
    bad = subprocess.run([sys.executable, "-m", "runtimes", str(int8_artifact), str(missing)],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and f"audio file not found: {missing}" in bad.stderr


def test_transcribe_cli_json_carries_the_scores_of_the_fallback(int8_artifact, jfk):
    import json

    cmd = [sys.executable, "-m", "runtimes", str(int8_artifact), str(jfk), "--format", "json",
           "--temperature", "0", "0.2", "0.4", "--threads", "2"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    segments = json.loads(proc.stdout)["segments"]
    assert [s["start"] for s in segments] == [0.0, 8.0]
    for s in segments:
        assert s["temperature"] == 0.0 and -1 < s["avg_logprob"] < 0
        assert 0 <= s["no_speech_prob"] < 0.1 and s["compression_ratio"] > 0


def test_ctranslate2_int8_is_batch_invariant_as_its_manifest_says(int8_artifact, ct2_int8,
                                                                   speech_rows):
    """CTranslate2 quantises activations row by row, so its int8 is batch-invariant."""
    audio = subset(speech_rows, "en")[1][:8]
    assert read_manifest(int8_artifact).batch_invariant is True
    alone = [t.tokens for t in ct2_int8.transcribe(audio, batch_size=1)]
    assert [t.tokens for t in ct2_int8.transcribe(audio, batch_size=8)] == alone
