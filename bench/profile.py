"""Top operators by time for one artifact: where its inference time goes.

PyTorch and TorchScript run under ``torch.profiler``; ONNX Runtime and OpenVINO use their
own profilers through ``RuntimeOptions(profile=True)``. CTranslate2's Python wheel has no
operator profiler, which the report says instead of guessing.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from runtimes.errors import OptionError

TORCH_FORMATS = ("transformers", "torchscript")


def operator_profile(path: Path, audio: list[np.ndarray], threads: int = 0,
                     device: str = "cpu") -> tuple[list[tuple[str, float, int]], float]:
    """((operator, total ms, calls) sorted by time, wall seconds) of transcribing ``audio``
    one clip at a time after one warm-up clip."""
    import runtimes
    from runtimes.engines.registry import detect_format

    fmt = detect_format(Path(path))
    # trust_code: the comparison profiles the artifacts it has just exported.
    options = runtimes.RuntimeOptions(device=device, threads=threads,
                                      profile=fmt not in TORCH_FORMATS, trust_code=True)
    with runtimes.load(path, options) as model:
        if fmt in TORCH_FORMATS:
            ops, wall = _torch_profile(model, audio)
        else:
            start = time.perf_counter()
            for clip in audio:
                model.transcribe([clip], 1)
            wall = time.perf_counter() - start
            ops = model.runtime.operator_profile()
    return sorted(ops, key=lambda op: -op[1]), wall


def _torch_profile(model, audio):
    import torch
    from torch.profiler import ProfilerActivity, profile

    model.transcribe(audio[:1], 1)
    start = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof, torch.inference_mode():
        for clip in audio:
            model.transcribe([clip], 1)
    wall = time.perf_counter() - start
    ops = [(e.key, e.self_cpu_time_total / 1000, e.count) for e in prof.key_averages()]
    return ops, wall


def markdown(name: str, ops: list[tuple[str, float, int]], wall_s: float, clips: int,
             top: int = 15) -> str:
    total = sum(ms for _, ms, _ in ops) or 1.0
    lines = [f"## Profile: {name}", "",
             f"{clips} clips at batch 1, {wall_s:.1f} s wall (profiler on); operator times are "
             f"self times, summed over threads' kernels as the profiler reports them.", "",
             "| operator | total ms | calls | share % |", "|---|---:|---:|---:|"]
    lines += [f"| {op} | {ms:.1f} | {calls} | {100 * ms / total:.1f} |" for op, ms, calls in ops[:top]]
    return "\n".join(lines) + "\n"


def profile_markdown(name: str, path: Path, audio: list[np.ndarray], threads: int,
                     device: str = "cpu") -> str:
    """The profile section for one row, or a line saying why there is none."""
    try:
        ops, wall = operator_profile(path, audio, threads, device)
    except OptionError as exc:
        return f"## Profile: {name}\n\nNot available: {exc} (CTranslate2's wheel has no profiler).\n"
    return markdown(name, ops, wall, len(audio))
