"""A row that fails makes the bench exit non-zero, and the report keeps the row's name."""

import csv
import subprocess
import sys

from tests.conftest import ROOT


def test_a_failed_row_fails_the_run_and_stays_named(tiny_random, tmp_path):
    (tmp_path / "broken.wav").write_text("not audio")
    manifest = tmp_path / "m.tsv"
    manifest.write_text("id\tpath\treference\nb\tbroken.wav\thello\n")
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--model", str(tiny_random), "--faster-whisper", "none",
         "--manifest", str(manifest), "--batch-sizes", "1", "--threads", "2",
         "--out", str(tmp_path / "out")],
        capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "error: row 'pytorch fp32' failed: " in result.stderr
    assert "not a decodable audio file" in result.stderr
    with open(tmp_path / "out" / "report.csv") as f:
        rows = list(csv.DictReader(f))
    assert rows[0]["system"] == "pytorch fp32" and rows[0]["error"]


def test_an_artifact_of_another_model_is_refused_before_any_work(tiny_random, tmp_path,
                                                                   capsys):
    """Issue 34: a whisper-small artifact benched against the default tiny.en baseline
    went unnoticed. The manifest's source is compared with --model's, in one line."""
    from bench.cli import _check_same_source, main
    from exporters import sources
    from exporters.api import export
    from exporters.options import ExportOptions
    from runtimes.artifacts.manifest import read_manifest

    artifact = export(str(tiny_random), ExportOptions("ctranslate2", "float32"),
                      tmp_path / "random-ct2", log=lambda _: None).path
    assert main([str(artifact), "--out", str(tmp_path / "out")]) == 2  # baseline: tiny.en
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{artifact} was exported from {tiny_random}" in err
    assert "not from the baseline --model bundled:tiny.en" in err and "--any-model" in err
    assert not (tmp_path / "out").exists()
    _check_same_source([artifact], [read_manifest(artifact)], sources.resolve(str(tiny_random)))
