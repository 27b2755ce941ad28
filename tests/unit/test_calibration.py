"""Calibration audio for activation quantisation: what it reads, caps and warns about."""

import numpy as np
import pytest

from exporters.calibration import CalibrationSet, encoder_inputs
from runtimes.errors import OptionError


def test_manifest_subsets_are_read_in_order_and_recorded(speech_rows):
    from tests.conftest import MANIFEST

    calibration = CalibrationSet(MANIFEST, ("formats", "multi"), 5)
    files = calibration.files()
    expected = [r for r in speech_rows if r["subset"] == "formats"] + \
        [r for r in speech_rows if r["subset"] == "multi"]
    assert [f.name for f in files] == [r["path"].split("/")[-1] for r in expected]
    assert calibration.to_dict(len(files)) == {
        "path": str(MANIFEST.resolve()), "subsets": ["formats", "multi"], "max_windows": 5,
        "files": len(expected)}


def test_windows_are_capped_and_a_small_set_is_warned_about(jfk, tmp_path):
    windows = encoder_inputs([jfk, jfk, jfk], 80, max_windows=2)
    assert len(windows) == 2 and windows[0].shape == (1, 80, 3000)
    with pytest.warns(UserWarning, match="only 1 calibration window"):
        encoder_inputs([jfk], 80, max_windows=64)


def test_silence_only_is_refused(tmp_path):
    import wave

    path = tmp_path / "silence.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(np.zeros(16000, "<i2").tobytes())
    with pytest.raises(OptionError, match="--calibration: the audio has no speech to measure on"):
        encoder_inputs([path], 80, max_windows=8)


def test_subsets_need_a_manifest(tmp_path):
    with pytest.raises(OptionError, match="--calibration-subset needs a manifest TSV"):
        CalibrationSet(tmp_path, ("en",)).files()
