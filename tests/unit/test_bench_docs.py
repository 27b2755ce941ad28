"""The benchmark pages in docs/benchmarks/ are what their results files give (bench.docs)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from bench import docs, report
from bench.runner import Row

ROOT = Path(__file__).resolve().parents[2]


def test_every_page_in_the_docs_is_generated_from_its_results_file():
    """A page edited by hand, or results added without regenerating, fails here."""
    assert docs.main(["--check"]) == 0
    generated = set(docs.pages())
    assert generated, "no results files in docs/benchmarks/results"
    written = {p for p in docs.DOCS.glob("*.md") if p.name != "README.md"}
    assert written == generated - {docs.README}, "a page without a results file"
    assert docs.MARKERS[0] in docs.README.read_text(), "the README's headline is generated"
    index = (docs.DOCS / "README.md").read_text()
    assert all(f"({page.name})" in index for page in written), "a page the index misses"


def test_a_figure_changed_by_hand_is_caught(tmp_path, capsys):
    copy = tmp_path / "benchmarks"
    shutil.copytree(docs.DOCS, copy)
    page = sorted(copy.glob("*.md"))[-1]
    text = page.read_text()
    digit = next(i for i, c in enumerate(text) if c.isdigit() and text[i - 1] == " "
                 and i > text.index("|"))
    page.write_text(text[:digit] + str((int(text[digit]) + 1) % 10) + text[digit + 1:])
    assert docs.main(["--check", "--docs", str(copy)]) == 1
    assert page.name in capsys.readouterr().err
    assert docs.main(["--docs", str(copy)]) == 0 and page.read_text() == text


def test_a_bench_results_file_reads_back_to_the_table_it_was_written_with(tmp_path):
    rows = [Row("pytorch fp32", "transformers", "fp32", rtfx_b1=9.5, rtfx_b1_rounds=[9.1, 9.9],
                rtfx_batched={8: 14.0}, wer=0.06, cer=0.03, delta_wer=0.0, clips=3,
                audio_s=20.0, baseline=True),
            Row("onnx int8", "onnxruntime", "int8", rtfx_b1=20.5, rtfx_batched={8: 30.1},
                wer=0.055, cer=0.02, delta_wer=-0.005, clips=3, audio_s=20.0)]
    run = {"decoding": {"beam_size": 1, "language": None, "task": "transcribe",
                        "max_new_tokens": 224},
           "command": "python -m bench a b", "commit": "abc1234567", "date": "2026-12-05",
           "environment": {"cpu": "Test CPU (AVX2, FMA)", "cpu_features": ["AVX2", "FMA"],
                           "cores": 2, "threads": 2, "python": "3.11", "versions": {}},
           "dataset": {"source": "m.tsv", "subset": "en", "clips": 3, "audio_s": 20.0},
           "normalizers": [], "notes": [], "repeats": 2}
    written = report.write(tmp_path / "run", rows, run, [1, 8])
    (tmp_path / "docs" / "results").mkdir(parents=True)
    shutil.copy(tmp_path / "run" / "results.jsonl", tmp_path / "docs" / "results" / "x.jsonl")
    (tmp_path / "docs" / "index.json").write_text(json.dumps({"x": {"title": "X"}}))
    text = docs.pages(tmp_path / "docs")[tmp_path / "docs" / "x.md"]
    assert report.markdown_table(rows, [1, 8]) in text and report.markdown_table(rows, [1, 8]) \
        in written
    assert text.startswith("# X\n") and "commit abc1234567 on 2026-12-05" in text
    assert "`python -m bench a b`" in text and "Test CPU (AVX2, FMA)" in text
