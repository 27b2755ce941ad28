"""Run every system in its own worker process and turn measurements into report rows."""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np

from bench.memory import gpu_description
from bench.metrics import (
    error_rates,
    normalizer_name,
    percentile,
    repeated_ngram_clips,
    token_agreement,
)
from bench.systems import SystemSpec
from bench.timing import start_errors, summary_ms
from runtimes.audio.datasets import Clip
from runtimes.base import DecodingOptions, RuntimeOptions
from runtimes.cpu import cpu_info

PACKAGES = ("torch", "transformers", "ctranslate2", "faster-whisper", "onnxruntime",
            "onnxruntime-gpu", "openvino", "tensorrt", "numpy", "jiwer")


@dataclass
class Row:
    """One line of the report."""

    name: str
    runtime: str = ""
    precision: str = ""
    size_mb: float = float("nan")
    load_s: float = float("nan")
    first_s: float = float("nan")
    latency_p50_ms: float = float("nan")
    latency_p95_ms: float = float("nan")
    rtfx_b1: float = float("nan")
    rtfx_b1_rounds: list[float] = field(default_factory=list)
    rtfx_batched: dict[int, float] = field(default_factory=dict)
    rtfx_batched_rounds: dict[int, list[float]] = field(default_factory=dict)
    idle_rss_mb: float = float("nan")
    peak_rss_b1_mb: float = float("nan")
    peak_rss_mb: float = float("nan")
    wer: float = float("nan")
    cer: float = float("nan")
    delta_wer: float = float("nan")
    token_agreement: float = float("nan")  # vs the baseline's greedy tokens, 0..1
    empty_outputs: int = 0  # clips with a reference but an empty transcript
    repeated_5grams: int = 0  # clips whose transcript repeats a word 5-gram more than the reference
    start_median_ms: float = float("nan")  # segment-start error on recordings with known starts
    start_p90_ms: float = float("nan")
    utterances: int = 0  # how many known starts the start error is over
    word_median_ms: float = float("nan")  # word-start gap to faster-whisper's words
    word_p90_ms: float = float("nan")
    words_matched: float = float("nan")  # share of the row's words found in the reference
    word_reference: bool = False  # this row's words are the reference
    export_s: float = float("nan")  # filled in by the comparison script
    compress: str = ""  # the comparison's --compress recipe this artifact went through
    packed_mb: float = float("nan")  # zlib size of its files (comparisons with --compress)
    sequential_batches: bool = False  # its batched RTFx is windows one after another
    peer: bool = False  # another tool used as its users use it, not a toolkit artifact
    device: str = "cpu"
    cpu: str = ""  # the CPU and its int8/bf16-relevant features (runtimes.cpu), where it ran
    backend: str = ""  # where the model ran (ONNX: the execution providers that ran)
    vram_b1_mb: float = float("nan")  # GPU memory after load and the batch-1 pass
    vram_mb: float = float("nan")  # ... and after the batched passes
    vram_how: str = ""  # how VRAM was read (bench.memory.VramMeter)
    clips: int = 0
    audio_s: float = 0.0
    baseline: bool = False
    error: str = ""
    notes: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    tokens: list[list[int]] = field(default_factory=list)

    @property
    def best_batched(self) -> tuple[int, float]:
        """(batch size, RTFx) of the fastest batch size measured, batch 1 included."""
        options = {1: self.rtfx_b1, **self.rtfx_batched}
        size = max(options, key=lambda b: -1.0 if math.isnan(options[b]) else options[b])
        return size, options[size]


def dir_size_mb(path: Path) -> float:
    """Bytes of every file below ``path`` (a deployment's footprint), or of the file
    ``path`` (openai-whisper's checkpoint), in MB (1e6)."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size / 1e6
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def environment(threads: int, device: str = "cpu") -> dict:
    """Versions, CPU, GPU (on cuda) and thread settings recorded with every run."""
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return {
        "python": platform.python_version(), "platform": platform.platform(),
        "cpu": cpu_info().label(), "cpu_features": list(cpu_info().features),
        "cores": os.cpu_count(),
        "threads": threads or f"{os.cpu_count()} (runtime default)", "versions": versions,
        **({"gpu": gpu_description() or "none visible"} if device == "cuda" else {}),
    }


def run_worker(job: dict, timeout_s: float | None = None) -> dict:
    """Run one job in a fresh interpreter; its progress bar goes to our stderr.

    Raises:
        RuntimeError: with the worker's last error line if it failed.
    """
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        job_file, result_file = Path(tmp) / "job.json", Path(tmp) / "result.json"
        job_file.write_text(json.dumps(job))
        env = {**os.environ, "OMP_NUM_THREADS": str(job["runtime"]["threads"] or os.cpu_count())}
        proc = subprocess.run(
            [sys.executable, "-m", "bench.worker", str(job_file), str(result_file)],
            stderr=subprocess.PIPE, text=True, env=env, timeout=timeout_s,
        )
        if proc.returncode != 0:
            lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
            raise RuntimeError(lines[-1] if lines else f"worker exited with {proc.returncode}")
        return json.loads(result_file.read_text())


def merge_rounds(rounds: list[dict]) -> dict:
    """One measurement from several rounds: the per-clip median latency, the median of
    every other timing, the highest memory. Medians across rounds that alternate between
    systems cancel most of the drift of a shared, noisy machine."""
    first = rounds[0]
    med = lambda key: float(np.median([r[key] for r in rounds]))  # noqa: E731
    return {
        **first,
        "load_s": med("load_s"), "first_s": med("first_s"),
        "latencies_s": np.median([r["latencies_s"] for r in rounds], axis=0).tolist(),
        "batched_s": {b: float(np.median([r["batched_s"][b] for r in rounds]))
                      for b in first["batched_s"]},
        "peak_rss_b1_mb": max(r["peak_rss_b1_mb"] for r in rounds),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in rounds),
        "vram_b1_mb": _highest(r.get("vram_b1_mb", float("nan")) for r in rounds),
        "vram_mb": _highest(r.get("vram_mb", float("nan")) for r in rounds),
        "rtfx_b1_rounds": [r["audio_s"] / sum(r["latencies_s"]) for r in rounds],
        "rtfx_batched_rounds": {b: [r["audio_s"] / r["batched_s"][b] for r in rounds]
                                for b in first["batched_s"]},
    }


def _highest(values) -> float:
    """The largest value that is not NaN (NaN if none is)."""
    numbers = [v for v in values if not math.isnan(v)]
    return max(numbers) if numbers else float("nan")


def to_row(spec: SystemSpec, m: dict, clips: list[Clip],
           truth: dict[int, list[float]] | None = None) -> Row:
    """Statistics of one (merged) measurement: latency percentiles, RTFx, corpus WER/CER,
    and the segment-start error on the clips whose true starts ``truth`` gives."""
    audio_s = m["audio_s"]
    row = Row(
        name=spec.name, runtime=m["runtime"], precision=m["precision"],
        size_mb=dir_size_mb(Path(spec.path)), load_s=m["load_s"], first_s=m["first_s"],
        latency_p50_ms=1000 * percentile(m["latencies_s"], 50),
        latency_p95_ms=1000 * percentile(m["latencies_s"], 95),
        rtfx_b1=audio_s / sum(m["latencies_s"]),
        rtfx_b1_rounds=m.get("rtfx_b1_rounds", []),
        rtfx_batched={int(b): audio_s / s for b, s in m["batched_s"].items()},
        rtfx_batched_rounds={int(b): v for b, v in m.get("rtfx_batched_rounds", {}).items()},
        idle_rss_mb=m["idle_rss_mb"], peak_rss_b1_mb=m["peak_rss_b1_mb"],
        peak_rss_mb=m["peak_rss_mb"], clips=len(clips),
        audio_s=audio_s, baseline=spec.baseline, notes=m["notes"], texts=m["texts"],
        tokens=m["tokens"], device=m["device"], cpu=m.get("cpu", ""),
        backend=m.get("backend", ""), vram_b1_mb=m.get("vram_b1_mb", float("nan")),
        vram_mb=m.get("vram_mb", float("nan")), vram_how=m.get("vram_how", ""),
        sequential_batches=m.get("sequential_batches", False), peer=spec.peer,
    )
    scored = [(c, t) for c, t in zip(clips, m["texts"]) if c.reference is not None]
    if scored:
        rates = error_rates([c.reference for c, _ in scored], [t for _, t in scored],
                            [c.language for c, _ in scored])
        row.wer, row.cer = rates.wer, rates.cer
        row.empty_outputs = sum(1 for c, t in scored if c.reference.strip() and not t.strip())
        row.repeated_5grams = repeated_ngram_clips([c.reference for c, _ in scored],
                                                   [t for _, t in scored])
    if truth and m.get("starts"):
        errors = np.concatenate([start_errors(truth[i], found)
                                 for i, found in zip(sorted(truth), m["starts"])])
        row.start_median_ms, row.start_p90_ms = summary_ms(errors)
        row.utterances = len(errors)
    return row


def run(
    systems: list[SystemSpec], clips: list[Clip], runtime: RuntimeOptions,
    decoding: DecodingOptions, batch_sizes: list[int], rounds: int = 1,
    truth: dict[int, list[float]] | None = None, words: bool = False,
) -> list[Row]:
    """Measure every system in its own process, ``rounds`` times in alternation (round 1:
    A, B, C; round 2: A, B, C; ...), merge the rounds and fill in ΔWER vs the baseline.
    ``truth``: true utterance starts of some clips (``bench.timing.known_starts``); each
    system also transcribes those with timestamps, once, for the start-error columns.
    ``words``: each system also decodes every clip with word timestamps, once, and the
    word-gap columns compare them with the first faster-whisper row's."""
    job = {"runtime": asdict(runtime), "decoding": asdict(decoding),
           "audio": [str(c.path) for c in clips], "batch_sizes": batch_sizes,
           "timestamp_clips": sorted(truth or {}), "word_timestamps": words}
    measured: dict[str, list[dict]] = {s.name: [] for s in systems}
    errors: dict[str, str] = {}
    for r in range(1, rounds + 1):
        for i, spec in enumerate(systems, start=1):
            if spec.name in errors:
                continue
            label = f" (round {r}/{rounds})" if rounds > 1 else ""
            print(f"[{i}/{len(systems)}] {spec.name}{label}", file=sys.stderr, flush=True)
            try:
                timed = job if r == 1 else {**job, "timestamp_clips": [],
                                             "word_timestamps": False}
                measured[spec.name].append(run_worker({**timed, "system": spec.to_dict()}))
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                errors[spec.name] = str(exc)
                print(f"  failed: {exc}", file=sys.stderr)
    rows = [
        Row(name=s.name, baseline=s.baseline, error=errors[s.name]) if s.name in errors
        else to_row(s, merge_rounds(measured[s.name]), clips, truth)
        for s in systems
    ]
    if words:
        add_word_gaps(systems, rows, {name: m[0].get("words") for name, m in measured.items()
                                      if m})
    baseline = next((r for r in rows if r.baseline and not r.error), None)
    for row in rows:
        if baseline is not None and not row.error:
            row.delta_wer = row.wer - baseline.wer
            if not row.peer:  # peers give text only
                row.token_agreement = token_agreement(baseline.tokens, row.tokens)
    return rows


def add_word_gaps(systems: list[SystemSpec], rows: list[Row],
                  words: dict[str, list | None]) -> None:
    """Each row's word-start gaps to the reference: the first faster-whisper row's words
    (its own ``word_timestamps=True``), matched in order by text (``bench.timing``)."""
    from bench.timing import word_start_gaps

    reference = next((s.name for s in systems if s.kind.startswith("faster-whisper")
                      and words.get(s.name)), None)
    if reference is None:
        return
    theirs = words[reference]
    for spec, row in zip(systems, rows):
        ours = words.get(spec.name)
        if row.error or not ours:
            continue
        row.word_reference = spec.name == reference
        gaps, total = [], 0
        for mine, ref in zip(ours, theirs):
            total += len(mine)
            gaps += word_start_gaps([tuple(w) for w in mine], [tuple(w) for w in ref])
        if gaps:
            row.word_median_ms, row.word_p90_ms = summary_ms(np.asarray(gaps))
            row.words_matched = len(gaps) / total


def normalizers_used(clips: list[Clip]) -> list[str]:
    return sorted({normalizer_name(c.language) for c in clips if c.reference is not None})
