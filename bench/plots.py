"""The comparison's two figures: speed against accuracy, and throughput against batch size.

matplotlib (the ``plots`` extra) is imported here only, with the Agg backend, so reports are
written on headless machines.
"""

from __future__ import annotations

import math
from pathlib import Path

from bench.runner import Row


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the (wer, rtfx) points no other point beats on both: lower-or-equal WER
    and higher-or-equal RTFx, better on at least one. Sorted by WER."""
    front = []
    for i, (wer, rtfx) in enumerate(points):
        dominated = any(w <= wer and r >= rtfx and (w < wer or r > rtfx)
                        for j, (w, r) in enumerate(points) if j != i)
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: points[i][0])


def _measured(rows: list[Row]) -> list[Row]:
    return [r for r in rows if not r.error and not math.isnan(r.wer) and not math.isnan(r.rtfx_b1)]


def rtfx_vs_wer(rows: list[Row], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = _measured(rows)
    points = [(100 * r.wer, r.rtfx_b1) for r in rows]
    front = set(pareto_front(points))
    fig, ax = plt.subplots(figsize=(9, 6))
    for i, (row, (wer, rtfx)) in enumerate(zip(rows, points)):
        ax.scatter(wer, rtfx, s=max(row.size_mb, 5) * 3, alpha=0.55,
                   edgecolors="black" if i in front else "none", linewidths=1.5)
        ax.annotate(row.name, (wer, rtfx), fontsize=8, xytext=(5, 5), textcoords="offset points")
    ordered = sorted(front, key=lambda i: points[i][0])
    ax.plot([points[i][0] for i in ordered], [points[i][1] for i in ordered], "k--", lw=1,
            label="Pareto front (no system is both faster and more accurate)")
    ax.set_xlabel("WER % (lower is better)")
    ax.set_ylabel("RTFx at batch 1 (higher is better)")
    ax.set_title(f"{title}: speed vs accuracy; marker area ∝ size on disk")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def throughput_vs_batch(rows: list[Row], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 6))
    for row in _measured(rows):
        sizes = sorted({1, *row.rtfx_batched})
        values = [row.rtfx_b1 if b == 1 else row.rtfx_batched[b] for b in sizes]
        ax.plot(sizes, values, marker="o", label=row.name)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("batch size")
    ax.set_ylabel("RTFx (audio seconds per processing second)")
    ax.set_title(f"{title}: throughput vs batch size")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_all(rows: dict[str, list[Row]], out_dir: Path, batch_sizes: list[int]) -> list[str]:
    """Both figures for every subset; returns the file names written."""
    names = []
    for subset, subset_rows in rows.items():
        if not _measured(subset_rows):
            continue
        name = f"rtfx_vs_wer_{subset}.png"
        rtfx_vs_wer(subset_rows, out_dir / name, f"subset {subset}")
        names.append(name)
        if len(batch_sizes) > 1:
            name = f"throughput_vs_batch_{subset}.png"
            throughput_vs_batch(subset_rows, out_dir / name, f"subset {subset}")
            names.append(name)
    return names
