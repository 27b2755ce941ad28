"""Write a run's rows as results.jsonl, report.csv and report.md (a Markdown table plus the
settings that make the numbers reproducible)."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from bench.runner import Row


def _fmt(value: float, digits: int = 1) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _pct(value: float) -> str:
    return "—" if math.isnan(value) else f"{100 * value:.2f}"


def _range(values: list[float]) -> str:
    """Lowest–highest RTFx over the rounds: the spread a reader should expect."""
    return f"{min(values):.1f}–{max(values):.1f}" if len(values) > 1 else "—"


def _delta(value: float) -> str:
    return "—" if math.isnan(value) else f"{100 * value:+.2f}"


def columns(batch_sizes: list[int]) -> list[tuple[str, Callable[[Row], str]]]:
    """(header, row -> cell) for the table and the CSV, in order."""
    cols = [
        ("system", lambda r: r.name),
        ("runtime", lambda r: r.runtime),
        ("precision", lambda r: r.precision),
        ("size MB", lambda r: _fmt(r.size_mb)),
        ("load s", lambda r: _fmt(r.load_s, 2)),
        ("first s", lambda r: _fmt(r.first_s, 2)),
        ("p50 ms", lambda r: _fmt(r.latency_p50_ms, 0)),
        ("p95 ms", lambda r: _fmt(r.latency_p95_ms, 0)),
        ("RTFx b1", lambda r: _fmt(r.rtfx_b1)),
        ("b1 range", lambda r: _range(r.rtfx_b1_rounds)),
    ]
    cols += [(f"RTFx b{b}", lambda r, b=b: _fmt(r.rtfx_batched.get(b, float("nan"))))
             for b in batch_sizes if b > 1]
    cols += [
        ("RSS b1 MB", lambda r: _fmt(r.peak_rss_b1_mb, 0)),
        ("RSS max MB", lambda r: _fmt(r.peak_rss_mb, 0)),
        ("WER %", lambda r: _pct(r.wer)),
        ("CER %", lambda r: _pct(r.cer)),
        ("ΔWER pts", lambda r: _delta(r.delta_wer)),
    ]
    return cols


def markdown_table(rows: list[Row], batch_sizes: list[int]) -> str:
    cols = columns(batch_sizes)
    lines = ["| " + " | ".join(h for h, _ in cols) + " |",
             "|" + "|".join("---" for _ in cols) + "|"]
    for row in rows:
        if row.error:
            cells = [row.name, f"failed: {row.error}"] + [""] * (len(cols) - 2)
        else:
            cells = [fn(row) for _, fn in cols]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _settings(run: dict) -> str:
    d, env, data = run["decoding"], run["environment"], run["dataset"]
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items())
    notes = "".join(f"\n- {n}" for n in run.get("notes", []))
    return (
        f"- data: {data['source']} (subset {data['subset'] or 'all'}), {data['clips']} clips, "
        f"{data['audio_s']:.0f} s of audio; normaliser: {', '.join(run['normalizers']) or 'none'}\n"
        f"- decoding: beam {d['beam_size']}, temperature 0, no timestamps, language "
        f"{d['language'] or 'auto/English-only'}, task {d['task']}, max {d['max_new_tokens']} new tokens\n"
        f"- machine: {env['cpu']}, {env['cores']} cores, {env['threads']} threads, "
        f"Python {env['python']}; {versions}\n"
        f"- rounds: {run['repeats']} (systems alternate, each in its own process; per-clip "
        f"median latency over rounds; 'b1 range' = lowest–highest RTFx b1 of the rounds)\n"
        f"- timer: log-mel + generate + detokenise per call (audio decoded beforehand); "
        f"RTFx = audio seconds / processing seconds; WER/CER corpus-level from the batch-1 pass; "
        f"RSS b1 = peak RSS of the system's own process after load and the batch-1 pass; RSS max "
        f"= its peak after the batched passes too (batching trades memory for speed)\n"
        f"- command: `{run['command']}`{notes}"
    )


def write(out_dir: Path, rows: list[Row], run: dict, batch_sizes: list[int]) -> str:
    """Write the three files into ``out_dir``; return the Markdown report."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "results.jsonl", "w") as f:
        for row in rows:
            f.write(json.dumps({**asdict(row), "run": run}) + "\n")
    cols = columns(batch_sizes)
    with open(out_dir / "report.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([h for h, _ in cols] + ["error"])
        for row in rows:
            writer.writerow([fn(row) if not row.error else "" for _, fn in cols] + [row.error])
    report = f"{markdown_table(rows, batch_sizes)}\n\n{_settings(run)}\n"
    (out_dir / "report.md").write_text(report)
    return report
