"""Measure one system in its own process: ``python -m bench.worker JOB.json RESULT.json``.

A fresh process per system keeps peak RSS honest (nothing left over from another runtime)
and stops one runtime's thread pools from slowing the next.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.memory import VramMeter, current_rss_mb, peak_rss_mb
from bench.systems import KINDS, System, SystemSpec
from runtimes.audio.files import duration_s, load_audio
from runtimes.base import DecodingOptions, RuntimeOptions
from runtimes.cpu import cpu_info


@dataclass
class Measurement:
    """Raw measurements of one system (the parent turns them into a report row).

    The timer around each call covers log-mel feature extraction, generate and
    detokenisation; audio files are decoded once beforehand, outside the timer.
    """

    runtime: str
    precision: str
    load_s: float
    first_s: float
    latencies_s: list[float]
    audio_s: float
    batched_s: dict[int, float]
    texts: list[str]
    tokens: list[list[int]]
    idle_rss_mb: float
    peak_rss_b1_mb: float
    peak_rss_mb: float
    batching: bool
    notes: list[str] = field(default_factory=list)
    device: str = "cpu"
    cpu: str = ""
    vram_b1_mb: float = float("nan")
    vram_mb: float = float("nan")
    vram_how: str = ""
    backend: str = ""
    starts: list[list[float]] = field(default_factory=list)  # segment starts, timestamp pass
    words: list | None = None  # (word, start) of each clip, word pass; None: cannot align
    sequential_batches: bool = False  # batched passes ran each batch's windows one by one


def _progress(items, desc: str):
    from tqdm import tqdm

    return tqdm(items, desc=desc, file=sys.stderr, leave=False, dynamic_ncols=True)


def measure(job: dict) -> Measurement:
    """Load, warm up, time batch 1 per clip, then time each batch size over all clips;
    then, untimed, the segment starts of the ``timestamp_clips`` decoded with timestamps and,
    with ``word_timestamps``, every clip's words."""
    spec = SystemSpec(**job["system"])
    runtime = RuntimeOptions(**job["runtime"])
    decoding = DecodingOptions(**job["decoding"])
    audio = [load_audio(p) for p in job["audio"]]
    idle = current_rss_mb()
    vram = VramMeter() if runtime.device == "cuda" else None
    start = time.perf_counter()
    system = open_system(spec, runtime, decoding)
    load_s = time.perf_counter() - start
    sync = _synchronizer(runtime.device)
    start = time.perf_counter()
    system.transcribe(audio[:1], 1)
    sync()
    first_s = time.perf_counter() - start
    latencies, outputs = [], []
    for samples in _progress(audio, f"{spec.name} batch 1"):
        start = time.perf_counter()
        outputs.extend(system.transcribe([samples], 1))
        sync()
        latencies.append(time.perf_counter() - start)
    peak_b1 = peak_rss_mb()
    vram_b1 = vram.read_mb() if vram else float("nan")
    notes = [system.called_with()] if spec.peer else []  # what the tool was asked to do
    batched, packed = _time_batches(system, spec, audio, job["batch_sizes"], sync, notes)
    if packed:  # a packed row's text is its packed pass's (batch 1 cannot pack)
        outputs = packed
    peak = peak_rss_mb()  # before the untimed passes, which the memory columns leave out
    vram_max = vram.read_mb() if vram else float("nan")
    starts = [] if not job.get("timestamp_clips") else system.segment_starts(
        [audio[i] for i in job["timestamp_clips"]], max(job["batch_sizes"]))
    words = (system.word_starts(audio, max(job["batch_sizes"]))
             if job.get("word_timestamps") else None)
    return Measurement(
        system.runtime_name, system.precision, load_s, first_s, latencies,
        sum(duration_s(a) for a in audio), batched, [text for text, _ in outputs],
        [tokens for _, tokens in outputs], idle, peak_b1, peak,
        system.batching, notes, runtime.device, cpu_info().label(), vram_b1,
        vram_max, vram.how if vram else "", system.backend,
        starts, words, system.sequential_batches,
    )


def _time_batches(system, spec: SystemSpec, audio: list, sizes: list[int], sync,
                  notes: list[str]) -> tuple[dict[int, float], list]:
    """Seconds for all clips at each batch size above 1; a size the system cannot batch
    at is a note, not a figure. A packed row gets all clips in one call (clips are packed
    only with those of their own call) and returns that pass's outputs too."""
    batched: dict[int, float] = {}
    if spec.pack:
        return _time_packed(system, audio, sizes, sync, notes)
    for size in (b for b in sizes if b > 1):
        if not system.batching:
            notes.append(f"batch {size}: not offered by {system.runtime_name}")
            continue
        if system.sequential_batches:
            notes.append(f"batch {size}: {system.runtime_name} has no batch API; each batch's "
                         f"windows ran one after another")
        start = time.perf_counter()
        for i in _progress(range(0, len(audio), size), f"{spec.name} batch {size}"):
            system.transcribe(audio[i : i + size], size)
        sync()
        batched[size] = time.perf_counter() - start
    return batched, []


def _time_packed(system, audio: list, sizes: list[int], sync,
                 notes: list[str]) -> tuple[dict[int, float], list]:
    batched, outputs = {}, []
    for size in (b for b in sizes if b > 1):
        start = time.perf_counter()
        outputs = system.transcribe(audio, size)
        sync()
        batched[size] = time.perf_counter() - start
    notes.append("packed: every clip in one call per batch size; WER and tokens from the "
                 "packed pass at the largest batch size, latency from batch 1 (unpacked)")
    return batched, outputs


def _synchronizer(device: str):
    """Waits for queued GPU work, so a timer never stops before the GPU does (every runtime
    here copies its results to the host, which waits too; this makes it explicit)."""
    if device != "cuda":
        return lambda: None
    import torch

    return torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)


def main(argv: list[str]) -> int:
    from dataclasses import asdict

    job = json.loads(Path(argv[0]).read_text())
    result = measure(job)
    Path(argv[1]).write_text(json.dumps(asdict(result)))
    return 0


def open_system(spec: SystemSpec, runtime: RuntimeOptions, decoding: DecodingOptions) -> System:
    """The system a row measures: the toolkit's or faster-whisper's (``bench.systems``), or
    a peer's own API (``bench.peer_systems``, imported only for its rows). Here, in the
    worker, rather than in ``bench.systems``, which the peers' classes build on."""
    if spec.peer:
        from bench import peer_systems

        return peer_systems.KINDS[spec.kind](spec, runtime, decoding)
    return KINDS[spec.kind](spec, runtime, decoding)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
