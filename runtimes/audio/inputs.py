"""Whatever a caller hands ``transcribe`` as audio, as 16 kHz mono float32 samples.

faster-whisper's ``transcribe`` takes a path, a file object or a 16 kHz array, and users
pass bytes from an upload too; a bare string used to be iterated as a list of paths, one
character at a time. Each kind is read here once, and anything else is refused naming its
type and what is accepted.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, Union

import numpy as np

from runtimes.audio.files import AudioReport, load_audio, load_audio_bytes
from runtimes.errors import OptionError

#: One audio input: a path, a file object opened for binary reading, the bytes of an audio
#: file, or 16 kHz mono samples (float, in [-1, 1]).
AudioInput = Union[str, Path, bytes, bytearray, memoryview, IO[bytes], np.ndarray]

ACCEPTED = "a path, a binary file object, bytes of an audio file, or a 1-D 16 kHz float array"


def is_single(audio: object) -> bool:
    """Whether ``audio`` is one input rather than a sequence of them."""
    return isinstance(audio, (str, Path, bytes, bytearray, memoryview, np.ndarray)) or hasattr(
        audio, "read")


def read_input(audio: AudioInput, max_seconds: float | None = None
               ) -> tuple[np.ndarray, AudioReport | None]:
    """The samples of one input, and what decoding its file found (None for an array).

    Raises:
        OptionError: an array that is not 1-D float samples, or a type not accepted.
        AudioError: a file that is missing, empty, not audio, or damaged beyond repair.
    """
    if isinstance(audio, np.ndarray):
        return _samples(audio), None
    report = AudioReport()
    if isinstance(audio, (str, Path)):
        return load_audio(audio, max_seconds, report), report
    if isinstance(audio, (bytes, bytearray, memoryview)):
        return load_audio_bytes(bytes(audio), "bytes", max_seconds, report), report
    if hasattr(audio, "read"):
        name = str(getattr(audio, "name", "file object"))
        text = OptionError(f"file object {name!r} is open as text: open it with 'rb'")
        if "b" not in getattr(audio, "mode", "b"):
            raise text
        try:
            data = audio.read()
        except UnicodeDecodeError as exc:
            raise text from exc
        if not isinstance(data, bytes):
            raise text
        return load_audio_bytes(data, name, max_seconds, report), report
    raise OptionError(f"audio of type {type(audio).__name__} is not accepted; give {ACCEPTED}")


def _samples(audio: np.ndarray) -> np.ndarray:
    """A caller's array as float32 samples: 1-D, floating point, finite."""
    if audio.ndim != 1 or not np.issubdtype(audio.dtype, np.floating):
        raise OptionError(f"an audio array must be 1-D float samples at 16 kHz (mono), got "
                          f"shape {audio.shape} of {audio.dtype}")
    if not np.isfinite(audio).all():
        raise OptionError("the audio array holds NaN or infinite samples")
    return np.ascontiguousarray(audio, np.float32)
