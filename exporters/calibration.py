"""Calibration audio for quantisers that measure activations (OpenVINO ``int8_static``).

Activation ranges are learnt from real speech of the deployment's domain, so the user
names it: a folder of audio files, or a manifest TSV (the bench's format) optionally
narrowed to some of its subsets. Clips are cut into the same <= 30 s windows and log-mel
features the runtimes use, so the quantiser sees exactly the encoder's real inputs.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from runtimes.errors import OptionError

#: Most windows used by default: NNCF's statistics settle well before this on Whisper
#: (18 windows were enough on tiny.en, README), and each costs one fp32 encoder pass.
DEFAULT_WINDOWS = 64
#: Fewer windows than this get a warning: on tiny.en, 4 windows cost 2.4 WER points where
#: 18 cost 0.1 (scripts/nncf_data_aware.py, README).
FEW_WINDOWS = 16


@dataclass(frozen=True)
class CalibrationSet:
    """Where the calibration audio comes from.

    Attributes:
        path: a folder of audio files or a manifest TSV.
        subsets: manifest subsets to use (empty: every clip).
        max_windows: most 30 s windows to feed the quantiser.
        flag: the command-line option that named the audio, for error messages
            ("--calibration", or "--distill" for the fine-tune's audio).
    """

    path: Path
    subsets: tuple[str, ...] = ()
    max_windows: int = DEFAULT_WINDOWS
    flag: str = "--calibration"

    def files(self) -> list[Path]:
        """The audio files, checked to exist (read once: the export checks them before any
        work, and the target reads them again to calibrate).

        Raises:
            OptionError: the path, a subset or a listed file does not exist, or nothing is left.
        """
        return list(_files(self))

    def check_decodes(self) -> None:
        """Decode the files a step will read (up to ``max_windows`` windows of 30 s), so
        that a folder of files that are not audio fails before compression or export work
        starts, not after it (issue 32: --distill failed 18 s in).

        Raises:
            OptionError: a file does not decode, naming it and the option; or no speech.
        """
        for _ in _speech(self.files(), self.max_windows, self.flag):
            pass

    def to_dict(self, n_files: int) -> dict:
        return {"path": str(self.path.resolve()), "subsets": list(self.subsets),
                "max_windows": self.max_windows, "files": n_files}


@lru_cache(maxsize=8)
def _files(calibration: CalibrationSet) -> tuple[Path, ...]:
    """``CalibrationSet.files`` (a failure raises and is not cached)."""
    from runtimes.audio.datasets import DatasetError, load_clips

    if calibration.max_windows < 1:
        raise OptionError(f"{calibration.flag}-size must be >= 1, got {calibration.max_windows}")
    if calibration.subsets and not calibration.path.is_file():
        raise OptionError(f"{calibration.flag}-subset needs a manifest TSV; {calibration.path} "
                          f"is not one")
    try:
        if not calibration.subsets:
            return tuple(c.path for c in load_clips(calibration.path))
        return tuple(c.path for s in calibration.subsets
                     for c in load_clips(calibration.path, s))
    except DatasetError as exc:
        raise OptionError(f"{calibration.flag}: {exc}") from exc


def encoder_inputs(files: Sequence[Path], n_mels: int, max_windows: int) -> list[np.ndarray]:
    """Log-mel windows (1, n_mels, 3000) of the files, in order, at most ``max_windows``."""
    from runtimes.audio.features import batch_log_mel

    windows = [batch_log_mel([window], n_mels) for window in _speech(files, max_windows)]
    if len(windows) < min(FEW_WINDOWS, max_windows):
        warnings.warn(f"only {len(windows)} calibration window(s) of 30 s; activation ranges "
                      f"from so little speech can cost WER (measured on tiny.en: 4 windows "
                      f"+2.4 points, 18 windows +0.1): give at least {FEW_WINDOWS}",
                      stacklevel=2)
    return windows


def _speech(files: Sequence[Path], max_windows: int,
            flag: str = "--calibration") -> Iterator[np.ndarray]:
    """The <= 30 s windows of the files' speech, in order, at most ``max_windows``.

    Raises:
        OptionError: a file does not decode (named, with ``flag``), or none has speech.
    """
    from runtimes.audio.chunking import split_windows
    from runtimes.audio.files import is_silence, load_audio
    from runtimes.errors import AudioError

    count = 0
    for path in files:
        try:
            audio = load_audio(path)
        except AudioError as exc:
            raise OptionError(f"{flag}: {exc}") from None
        if is_silence(audio):
            continue
        for window in split_windows(audio):
            yield window
            count += 1
            if count == max_windows:
                return
    if not count:
        raise OptionError(f"{flag}: the audio has no speech to measure on")
