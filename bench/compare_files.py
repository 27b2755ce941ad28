"""What the comparison writes: report.md, report.csv, results.jsonl, the plots, the
peers' speed ratios and the ``--profile`` section. Apart from ``bench.compare`` (which
plans and measures) so a report can be rewritten from results without measuring again."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

from bench import report
from bench.compare import Comparison, fits_budget
from bench.options import CompareOptions
from bench.runner import Row


def peer_ratios(rows: list[Row], max_wer_delta: float | None = None) -> list[str]:
    """Per peer row, the toolkit's fastest artifact at batch 1 (PyTorch and faster-whisper
    rows are not artifacts) against that peer: "X is N.NNx peer" lines; then, where it is
    another artifact, the same for the fastest within ``max_wer_delta`` WER points of the
    baseline (the fastest may have bought its speed with words, as int4 does)."""
    artifacts = [r for r in rows if not r.error and not r.peer and r.runtime != "transformers"
                 and not r.name.startswith(("faster-whisper", "pytorch"))]
    if not artifacts:
        return []
    picks = [("", max(artifacts, key=lambda r: r.rtfx_b1))]
    fits = [r for r in artifacts if max_wer_delta is not None and fits_budget(r, max_wer_delta)]
    if fits and (within := max(fits, key=lambda r: r.rtfx_b1)) is not picks[0][1]:
        picks.append((f", the fastest within {max_wer_delta:g} WER points", within))
    return [f"{best.name}{label} (RTFx b1 {best.rtfx_b1:.1f}, WER {100 * best.wer:.2f}%) is "
            f"{best.rtfx_b1 / r.rtfx_b1:.2f}x {r.name} (RTFx b1 {r.rtfx_b1:.1f}, WER "
            f"{100 * r.wer:.2f}%)" for label, best in picks
            for r in rows if r.peer and not r.error and r.rtfx_b1 > 0]


def write(comparison: Comparison, out_dir: Path, run_info: dict,
          batch_sizes: list[int]) -> str:
    """report.md, report.csv and results.jsonl for all subsets, plus the plots."""
    from bench import plots

    out_dir.mkdir(parents=True, exist_ok=True)
    sections = [f"# Runtime comparison: {run_info['model']}", ""]
    if comparison.recommendation:
        sections += [comparison.recommendation, ""]
    with open(out_dir / "results.jsonl", "w") as f:
        for subset, rows in comparison.rows.items():
            for row in rows:
                f.write(json.dumps({"subset": subset, **asdict(row), "run": run_info}) + "\n")
        for variant in comparison.skipped:
            f.write(json.dumps({"subset": None, "name": variant.name, "skipped": variant.skip_reason})
                    + "\n")
    cols = [("device", lambda r: r.device), ("export s", lambda r: report.fmt(r.export_s, 1))]
    if any(row.compress for rows in comparison.rows.values() for row in rows):
        cols += [("method", lambda r: r.compress or "none"),
                 ("zlib MB", lambda r: report.fmt(r.packed_mb))]
    for subset, rows in comparison.rows.items():
        table = report.markdown_table(rows, batch_sizes, extra=cols)
        sections += [f"## Subset `{subset}` ({rows[0].clips} clips, {rows[0].audio_s:.0f} s)", "",
                     table, ""]
        if ratios := peer_ratios(rows, comparison.max_wer_delta):
            sections += ["Toolkit's fastest artifact against each peer, batch 1:", "",
                         *[f"- {line}" for line in ratios], ""]
    if comparison.skipped:
        sections += ["## Not measured on this machine", "", "| target precision | why |",
                     "|---|---|"]
        sections += [f"| {v.name} | {v.skip_reason} |" for v in comparison.skipped]
        sections.append("")
    report.write_csv(out_dir / "report.csv", comparison.rows, batch_sizes, extra=cols)
    figures = plots.write_all(comparison.rows, out_dir, batch_sizes)
    sections += [f"![{name}]({name})" for name in figures] + [""]
    sections += ["## Settings", "", report.settings(run_info)]
    text = "\n".join(sections) + "\n"
    (out_dir / "report.md").write_text(text)
    return text


def profile_section(options: CompareOptions, out_dir: Path, comparison: Comparison,
                    clips: int = 8) -> str:
    """Top operators of the ``--profile`` row on the first clips of the first subset;
    also written to profile.md."""
    from bench.profile import profile_markdown
    from runtimes.audio.files import load_audio

    audio = [load_audio(c.path) for c in comparison.first_clips[:clips]]
    print(f"[profile] {options.profile} on {len(audio)} clips", file=sys.stderr, flush=True)
    text = profile_markdown(options.profile, comparison.paths[options.profile], audio,
                            options.threads, options.device)
    (out_dir / "profile.md").write_text(text)
    with open(out_dir / "report.md", "a") as f:
        f.write("\n" + text)
    return "\n" + text
