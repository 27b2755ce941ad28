"""The reduced comparison CI runs: the tiny random model through three targets (every CPU
precision of each) on two clips, plus one compression recipe, through the real script, and
its bad-argument errors. OpenVINO's five precisions are left out here to keep the suite
short (they cost about 2.5 minutes on an AVX2 machine): the comparison treats every target
alike, and tests/parity/test_export_targets.py exports each of them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "compare_runtimes.py"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=900)


@pytest.fixture(scope="module")
def comparison(tiny_random, tmp_path_factory, speech_rows) -> Path:
    out = tmp_path_factory.mktemp("compare")
    result = _run("--model", str(tiny_random), "--subsets", "en", "--limit", "2",
                  "--targets", "ctranslate2", "onnx", "torchscript", "tensorrt",
                  "--batch-sizes", "1", "2", "--threads", "2", "--max-wer-delta", "1000",
                  "--profile", "onnx int8", "--compress", "prune-heads:0.5+prune-ffn:0.25",
                  "--compress-with", "onnx int8", "ctranslate2 int8_float32", "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def test_report_has_every_cpu_variant_and_the_skipped_ones(comparison):
    report = (comparison / "report.md").read_text()
    for name in ("pytorch fp32", "ctranslate2 int8_float32", "ctranslate2 fp32",
                 "onnx fp32", "onnx int8", "onnx int4", "torchscript fp32",
                 "faster-whisper int8", "faster-whisper batched int8"):
        assert f"| {name} |" in report
    assert "## Not measured on this machine" in report and "| tensorrt fp16 |" in report
    assert "Fastest artifact within 1000 WER points" in report
    assert "## Profile: onnx int8" in report and "| MatMul" in report


def test_a_compression_recipe_adds_its_rows_with_method_and_packed_size(comparison):
    lines = [json.loads(line) for line in (comparison / "results.jsonl").read_text().splitlines()]
    name = "onnx int8 + prune-heads:0.5+prune-ffn:0.25"
    pruned = next(r for r in lines if r["name"] == name)
    plain = next(r for r in lines if r["name"] == "onnx int8")
    assert pruned["compress"] == "prune-heads:0.5+prune-ffn:0.25" and plain["compress"] == ""
    assert not pruned["error"] and pruned["size_mb"] < plain["size_mb"]  # weights removed
    assert 0 < pruned["packed_mb"] < pruned["size_mb"] + 0.01 and plain["packed_mb"] > 0
    report = (comparison / "report.md").read_text()
    assert "| export s | method | zlib MB | size MB |" in report
    skipped = next(r for r in lines if r["name"] == "ctranslate2 int8_float32 + prune-heads:0.5"
                   "+prune-ffn:0.25")
    assert "one head count for every layer" in skipped["skipped"]


def test_results_plots_and_csv_are_written(comparison):
    lines = [json.loads(line) for line in (comparison / "results.jsonl").read_text().splitlines()]
    measured = [r for r in lines if r["subset"] == "en"]
    assert len(measured) >= 9 and all(r["clips"] == 2 for r in measured if not r["error"])
    onnx = next(r for r in measured if r["name"] == "onnx fp32")
    assert onnx["export_s"] > 0 and onnx["size_mb"] > 0 and 0 <= onnx["token_agreement"] <= 1
    assert any(r.get("skipped") for r in lines)
    for name in ("rtfx_vs_wer_en.png", "throughput_vs_batch_en.png"):
        assert (comparison / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    csv_lines = (comparison / "report.csv").read_text().splitlines()
    assert csv_lines[0].startswith("subset,system,") and len(csv_lines) == len(measured) + 1


@pytest.mark.parametrize("args, message", [
    (["--targets", "onnx", "nope"], "unknown target(s) nope"),
    (["--profile", "onnx int3"], "--profile 'onnx int3' is not a row of this comparison"),
    (["--limit", "0"], "--limit must be >= 1"),
    (["--subsets", "klingon"], "subset 'klingon' not in"),
    (["--max-wer-delta", "-1"], "--max-wer-delta must be >= 0"),
    (["--model", "/no/such/model"], "model path not found"),
    (["--calibration", "/no/such/dir"], "--calibration: manifest not found: /no/such/dir"),
    (["--calibration-subset", "formats"], "--calibration-subset needs --calibration"),
    (["--compress", "prune-heads:2"], "--compress 'prune-heads:2': expected prune-heads:FRACTION"),
    (["--compress-with", "onnx int8"], "--compress-with names rows for --compress recipes"),
    (["--compress", "cluster:16", "--compress-with", "onnx int3"],
     "--compress-with onnx int3: not a row this comparison runs"),
])
def test_bad_arguments_exit_2_with_a_message(args, message, tmp_path, speech_rows):
    result = _run(*args, "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert not (tmp_path / "out").exists()
