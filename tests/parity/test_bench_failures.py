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
    assert "error: row 'pytorch float32' failed: " in result.stderr
    assert "not a decodable audio file" in result.stderr
    with open(tmp_path / "out" / "report.csv") as f:
        rows = list(csv.DictReader(f))
    assert rows[0]["system"] == "pytorch float32" and rows[0]["error"]
