"""Process memory as the OS sees it (Linux), so every runtime is measured the same way."""

from __future__ import annotations

import resource
import sys


def _status_mb(field: str) -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def current_rss_mb() -> float:
    """Resident set size now, from /proc/self/status (falls back to the peak elsewhere)."""
    value = _status_mb("VmRSS:")
    return peak_rss_mb() if value is None else value


def peak_rss_mb() -> float:
    """Peak resident set size of this process's own memory so far.

    VmHWM, not ``ru_maxrss``: Linux carries ``ru_maxrss`` over from the parent at fork and
    across exec, so a worker started by a large parent (the comparison script, after its
    exports) would report the parent's peak instead of its own.
    """
    value = _status_mb("VmHWM:")
    if value is not None:
        return value
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024
