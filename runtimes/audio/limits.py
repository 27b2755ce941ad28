"""How much audio a file may decode to, checked while it decodes.

An upload's own size bounds its audio: real speech codecs need hundreds of bytes per
second, so a small file that claims hours (a decompression bomb) is refused after decoding
only what its size allows, and a container that declares too much is refused before any.
"""

from __future__ import annotations

import numpy as np

from runtimes.errors import AudioError

SAMPLE_RATE = 16000
#: Fewest bytes of upload per second of decoded audio that real speech files have: Opus, the
#: leanest codec FFmpeg decodes, needs 6 kbit/s = 750 bytes/s. A 1 Hz WAV of 21.6 KB claims
#: 3 hours (2 bytes/s) and decoded to 2.4 GB in a server; at 64 bytes/s it stops at 337 s.
MIN_BYTES_PER_SECOND = 64


class AudioTooLongError(AudioError):
    """The audio decodes to more than the caller allows; decoding stopped there."""


def max_decoded_seconds(n_bytes: int, max_seconds: float | None) -> float | None:
    """The most audio a file of ``n_bytes`` may decode to: ``max_seconds`` where given, and
    never more than one second per MIN_BYTES_PER_SECOND bytes (a decompression bomb's
    claimed hours stop there). None: no limit (local files the caller trusts)."""
    if max_seconds is None:
        return None
    return min(max_seconds, n_bytes / MIN_BYTES_PER_SECOND)


def limit_for(n_bytes: int, max_seconds: float | None) -> tuple[int, str] | None:
    """(most samples, why) for the decoders' checks; None without a limit."""
    seconds = max_decoded_seconds(n_bytes, max_seconds)
    if seconds is None:
        return None
    why = (f"the limit is {max_seconds:g} s" if seconds == max_seconds else
           f"a {n_bytes}-byte file may hold at most {seconds:.0f} s (1 s per "
           f"{MIN_BYTES_PER_SECOND} bytes; real speech codecs need 750 or more)")
    return int(seconds * SAMPLE_RATE), why


def check_declared(duration_us: int | None, label: str, limit: tuple[int, str] | None) -> None:
    """Refuse at once a container whose header declares more than 1.1x the limit (declared
    durations of VBR files are estimates, hence the slack; the decoded count still rules),
    so a long upload is not transcribed for minutes only to be refused at its end."""
    if limit is None or duration_us is None or duration_us <= 0:
        return
    declared = duration_us / 1e6
    if declared * SAMPLE_RATE > 1.1 * limit[0]:
        raise AudioTooLongError(f"audio longer than allowed: {label} declares {declared:.0f} s, "
                                f"more than {limit[0] / SAMPLE_RATE:.0f} s ({limit[1]})")


def check_total(total: int, label: str, limit: tuple[int, str] | None) -> None:
    if limit is not None and total > limit[0]:
        raise AudioTooLongError(f"audio longer than allowed: {label} decodes to more than "
                                f"{limit[0] / SAMPLE_RATE:.0f} s ({limit[1]})")


def check_length(samples: np.ndarray, label: str, limit: tuple[int, str] | None) -> np.ndarray:
    check_total(samples.size, label, limit)
    return samples
