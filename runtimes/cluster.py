"""What the Ray command lines (``runtimes.batch``, ``runtimes.serve --ray``) share before
Ray is imported."""

from __future__ import annotations

import socket

from runtimes.errors import OptionError


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
