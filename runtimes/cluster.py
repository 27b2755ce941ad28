"""What the Ray command lines (``runtimes.batch``, ``runtimes.serve --ray``) share before
Ray is imported."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import TYPE_CHECKING

from runtimes.errors import OptionError

if TYPE_CHECKING:
    from runtimes.base import DecodingOptions, RuntimeOptions


def check_address(address: str, timeout_s: float = 3.0) -> None:
    """Refuse an address nothing listens on within seconds (``ray.init`` would retry for a
    minute or more before failing)."""
    if address in ("auto", "local"):
        return
    hostport = address.removeprefix("ray://")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise OptionError(f"--address {address!r} is not auto, HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise OptionError(f"--address {address!r}: no Ray cluster answers there ({exc}); start "
                          f"one with 'ray start --head' or omit --address for a local one") from exc


def count_range(count: int | tuple[int, int]) -> tuple[int, int] | None:
    """(low, high) of a worker count or a MIN MAX pair; None unless 1 <= low <= high."""
    low, high = count if isinstance(count, tuple) else (count, count)
    ok = isinstance(low, int) and isinstance(high, int) and 1 <= low <= high
    return (low, high) if ok else None


def default_gpus(device: str, requested: float | None) -> float:
    """GPUs a worker reserves: as requested, else one on CUDA (one model per GPU)."""
    if requested is not None:
        return requested
    return 1.0 if device == "cuda" else 0.0


def worker_options(options: RuntimeOptions, cpus: float) -> RuntimeOptions:
    """``options`` for one Ray worker: threads 0 ("all cores") means the worker's share of
    the node (its reserved CPUs), not the whole node."""
    from dataclasses import replace

    return replace(options, threads=max(1, int(cpus))) if options.threads == 0 else options


def check_before_scheduling(artifact: Path, options: RuntimeOptions,
                            decoding: DecodingOptions, aligns: bool = False,
                            pack: bool = False) -> None:
    """Every check a worker would make on the artifact, on the driver before any worker
    starts: on a CPU it is loaded once (and asked to align with ``aligns``, to pack with
    ``pack``); for another device only its files are checked (this machine may not have
    that device)."""
    import runtimes

    if options.device != "cpu":
        runtimes.check_artifact(artifact, options)
        return
    with runtimes.load(artifact, options, decoding) as model:
        if aligns:
            model.runtime.check_aligns()
        if pack:
            from runtimes.transcript.packing import check_packing

            check_packing(model.runtime)
