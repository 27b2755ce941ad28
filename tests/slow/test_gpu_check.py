"""scripts/gpu_check.py: on a machine without a GPU it says so and exits 0; its rows, table
and files are exercised on the CPU (--device cpu) with real tiny.en."""

import json
import subprocess
import sys

from tests.conftest import MANIFEST, ROOT

SCRIPT = ROOT / "scripts" / "gpu_check.py"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=600)


def test_without_a_gpu_it_reports_the_machine_and_exits_0(speech_rows):
    import torch

    if torch.cuda.is_available():
        return  # the real check runs there instead
    result = _run("--manifest", str(MANIFEST))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "no CUDA GPU visible to torch: nothing to check" in result.stdout
    assert "onnxruntime:" in result.stdout and "transformers:" in result.stdout


def test_rows_table_and_files_on_the_cpu(tmp_path, speech_rows):
    result = _run("--device", "cpu", "--manifest", str(MANIFEST), "--limit", "2",
                  "--batch-sizes", "1", "2", "--targets", "torchscript", "--out", str(tmp_path))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    rows = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert [r["name"] for r in rows] == ["pytorch fp32", "torchscript fp32"]
    assert all(r["status"] == "ok" and r["rtfx"]["2"] > 0 for r in rows)
    assert "| torchscript fp32 | ok | torchscript cpu |" in (tmp_path / "gpu_check.md").read_text()
