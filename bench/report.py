"""Write a run's rows as results.jsonl, report.csv and report.md (a Markdown table plus the
settings that make the numbers reproducible)."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

from bench.runner import Row
from runtimes.cpu import CpuInfo


def fmt(value: float, digits: int = 1) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def pct(value: float) -> str:
    return "—" if math.isnan(value) else f"{100 * value:.2f}"


def spread(values: list[float]) -> str:
    """Lowest–highest RTFx over the rounds: the spread a reader should expect."""
    return f"{min(values):.1f}–{max(values):.1f}" if len(values) > 1 else "—"


def _delta(value: float) -> str:
    return "—" if math.isnan(value) else f"{100 * value:+.2f}"


Column = tuple[str, Callable[[Row], str]]


def columns(batch_sizes: list[int], extra: Sequence[Column] = (),
            vram: bool = False, starts: bool = False, words: bool = False,
            ranges: bool = False) -> list[Column]:
    """(header, row -> cell) for the table and the CSV, in order; ``extra`` columns (the
    comparison's export time and device) follow the precision; ``vram`` adds GPU memory,
    ``starts`` the segment-start error, ``words`` the word-start gap to faster-whisper,
    ``ranges`` each batched RTFx's lowest-highest over the rounds."""
    cols = [
        ("system", lambda r: r.name),
        ("runtime", lambda r: r.runtime),
        ("precision", lambda r: r.precision),
        *extra,
        ("size MB", lambda r: fmt(r.size_mb)),
        ("load s", lambda r: fmt(r.load_s, 2)),
        ("first s", lambda r: fmt(r.first_s, 2)),
        ("p50 ms", lambda r: fmt(r.latency_p50_ms, 0)),
        ("p95 ms", lambda r: fmt(r.latency_p95_ms, 0)),
        ("RTFx b1", lambda r: fmt(r.rtfx_b1)),
        ("b1 range", lambda r: spread(r.rtfx_b1_rounds)),
    ]
    for b in (b for b in batch_sizes if b > 1):
        cols.append((f"RTFx b{b}", lambda r, b=b: _batched(r, b)))
        if ranges:
            cols.append((f"b{b} range", lambda r, b=b: spread(r.rtfx_batched_rounds.get(b, []))))
    if len(batch_sizes) > 2:
        cols.append(("best RTFx (batch)", _best))
    cols += [
        ("RSS b1 MB", lambda r: fmt(r.peak_rss_b1_mb, 0)),
        ("RSS max MB", lambda r: fmt(r.peak_rss_mb, 0)),
    ]
    if vram:
        cols += [("VRAM b1 MB", lambda r: fmt(r.vram_b1_mb, 0)),
                 ("VRAM max MB", lambda r: fmt(r.vram_mb, 0))]
    cols += [
        ("WER %", lambda r: pct(r.wer)),
        ("CER %", lambda r: pct(r.cer)),
        ("ΔWER pts", lambda r: _delta(r.delta_wer)),
        ("token agree %", lambda r: pct(r.token_agreement)),
        ("empty", lambda r: str(r.empty_outputs)),
        ("rep 5-gram", lambda r: str(r.repeated_5grams)),
    ]
    if starts:
        cols += [("start err med ms", lambda r: fmt(r.start_median_ms, 0)),
                 ("start err p90 ms", lambda r: fmt(r.start_p90_ms, 0))]
    if words:
        cols += [("word gap med ms", lambda r: _word_cell(r, r.word_median_ms)),
                 ("word gap p90 ms", lambda r: _word_cell(r, r.word_p90_ms)),
                 ("words matched %", lambda r: _word_cell(r, 100 * r.words_matched, 1))]
    return cols


def _batched(row: Row, size: int) -> str:
    """A batched RTFx, marked "seq" where the runtime ran the batch's windows one after
    another (no batch API): not a batched figure, and not shown as one."""
    cell = fmt(row.rtfx_batched.get(size, float("nan")))
    return f"{cell} seq" if row.sequential_batches and cell != "—" else cell


def _word_cell(row: Row, value: float, digits: int = 0) -> str:
    return "ref" if row.word_reference else fmt(value, digits)


def _best(row: Row) -> str:
    size, rtfx = row.best_batched
    return f"{fmt(rtfx)} (b{size})"


def _has_vram(rows: list[Row]) -> bool:
    return any(not math.isnan(r.vram_mb) for r in rows)


def _has_starts(rows: list[Row]) -> bool:
    return any(r.utterances for r in rows)


def _has_words(rows: list[Row]) -> bool:
    return any(r.word_reference for r in rows)


def _has_ranges(rows: list[Row]) -> bool:
    """Batched figures from several rounds (results written before they were kept have
    none, and their pages keep their columns)."""
    return any(len(v) > 1 for r in rows for v in r.rtfx_batched_rounds.values())


def markdown_table(rows: list[Row], batch_sizes: list[int], extra: Sequence[Column] = ()) -> str:
    cols = columns(batch_sizes, extra, _has_vram(rows), _has_starts(rows), _has_words(rows),
                   _has_ranges(rows))
    lines = ["| " + " | ".join(h for h, _ in cols) + " |",
             "|" + "|".join("---" for _ in cols) + "|"]
    for row in rows:
        if row.error:
            cells = [row.name, f"failed: {row.error}"] + [""] * (len(cols) - 2)
        else:
            cells = [fn(row) for _, fn in cols]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def settings(run: dict) -> str:
    """The settings that make a run's numbers reproducible, as a Markdown list."""
    d, env, data = run["decoding"], run["environment"], run["dataset"]
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items())
    notes = "".join(f"\n- {n}" for n in run.get("notes", []))
    return (
        f"- data: {data['source']} (subset {data['subset'] or 'all'}), {data['clips']} clips, "
        f"{data['audio_s']:.0f} s of audio; normaliser: {', '.join(run['normalizers']) or 'none'}\n"
        f"- decoding: beam {d['beam_size']}, temperature 0, {_long_form(d)}, language "
        f"{d['language'] or 'auto/English-only'}, task {d['task']}, max {d['max_new_tokens']} new tokens\n"
        f"{_starts_line(run)}{_words_line(run)}"
        f"- machine: {env['cpu']}, {env['cores']} cores, {env['threads']} threads, "
        f"{_isa_note(env)}"
        f"Python {env['python']}; {versions}\n"
        f"{_gpu_line(env)}"
        f"- rounds: {run['repeats']} (systems alternate, each in its own process; per-clip "
        f"median latency over rounds; 'b1 range' = lowest–highest RTFx b1 of the rounds)\n"
        f"- timer: log-mel + generate + detokenise per call (audio decoded beforehand); "
        f"RTFx = audio seconds / processing seconds; WER/CER corpus-level from the batch-1 pass; "
        f"RSS b1 = peak RSS of the system's own process after load and the batch-1 pass; RSS max "
        f"= its peak after the batched passes too (batching trades memory for speed)\n"
        f"- threads: numpy's BLAS runs on one thread during pre-processing, for every system "
        f"including faster-whisper (runtimes.audio.features.single_threaded_blas: its spinning "
        f"threads would otherwise take the runtime's cores)\n"
        f"{_seq_line(run)}"
        f"- command: `{run['command']}`{notes}"
    )


def _seq_line(run: dict) -> str:
    if not run.get("sequential_rows"):
        return ""
    return (f"- seq: {', '.join(run['sequential_rows'])} ran each batch's windows one after "
            f"another (no batch API): its batched RTFx is sequential decoding at that batch "
            f"size, not batching\n")


def _long_form(decoding: dict) -> str:
    """How long recordings were cut (older results.jsonl lack it: VAD windows)."""
    if decoding.get("long_form", "vad") == "vad":
        return "no timestamps, long recordings in VAD windows decoded in parallel"
    prompt = ("prompted with the previous text" if decoding.get("condition_on_previous_text")
              else "no previous-text prompt")
    return f"timestamps, long recordings decoded sequentially (openai's seeking, {prompt})"


def _starts_line(run: dict) -> str:
    if not run.get("start_error_clips"):
        return ""
    return (f"- start err: the recordings with known utterance starts "
            f"({', '.join(run['start_error_clips'])}) decoded once more with timestamps "
            f"(largest batch size, untimed); median / 90th percentile over their utterances "
            f"of |nearest segment start - true start| (bench.timing)\n")


def _words_line(run: dict) -> str:
    if not run.get("word_agreement"):
        return ""
    return ("- word gap: every clip decoded once more with word timestamps (untimed, largest "
            "batch size); median / 90th percentile of |start - faster-whisper's start| over "
            "the words matched in order by text with the reference row's "
            "(word_timestamps=True), and the share of a row's words matched; — where the "
            "artifact cannot align (exported without --word-timestamps)\n")


def _gpu_line(env: dict) -> str:
    if "gpu" not in env:
        return ""
    return (f"- GPU: {env['gpu']}; VRAM = this process's GPU memory from NVML where the driver "
            f"reports it, else the device's growth since the system loaded, else torch's peak "
            f"reserved memory (each row's vram_how in results.jsonl says which); the timer "
            f"waits for the GPU (torch.cuda.synchronize)\n")


def _isa_note(env: dict) -> str:
    """What the CPU's features mean for the figures (older results.jsonl lack them)."""
    if env.get("cpu_features") is None:
        return ""
    cpu = CpuInfo(env["cpu"], tuple(env["cpu_features"]))
    return (f"int8 kernels {'with' if cpu.int8_dot_product else 'without'} VNNI, "
            f"{'bf16 available' if cpu.bf16 else 'no bf16 (OpenVINO computes in f32)'}; ")


def write_csv(path: Path, rows: dict[str, list[Row]], batch_sizes: list[int],
              extra: Sequence[Column] = ()) -> None:
    """One CSV line per row, subsets in the first column."""
    cols = columns(batch_sizes, extra, any(_has_vram(r) for r in rows.values()),
                   any(_has_starts(r) for r in rows.values()),
                   any(_has_words(r) for r in rows.values()),
                   any(_has_ranges(r) for r in rows.values()))
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["subset"] + [h for h, _ in cols] + ["cpu", "backend", "error"])
        for subset, subset_rows in rows.items():
            for row in subset_rows:
                cells = [fn(row) if not row.error or h == "system" else "" for h, fn in cols]
                writer.writerow([subset, *cells, row.cpu, row.backend, row.error])


def write(out_dir: Path, rows: list[Row], run: dict, batch_sizes: list[int],
          clips: Sequence = ()) -> str:
    """Write the three files into ``out_dir``; return the Markdown report (with the words
    each row lost against faster-whisper's batched pipeline, given the clips)."""
    from bench.lost_words import section

    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "results.jsonl", "w") as f:
        for row in rows:
            f.write(json.dumps({**asdict(row), "run": run}) + "\n")
    write_csv(out_dir / "report.csv", {run["dataset"]["subset"] or "all": rows}, batch_sizes)
    report = f"{markdown_table(rows, batch_sizes)}\n\n{settings(run)}\n{section(rows, clips)}"
    (out_dir / "report.md").write_text(report)
    return report
