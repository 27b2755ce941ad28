"""The timestamp-accuracy measure: true utterance starts of the longform recordings."""

import numpy as np
import pytest

from bench.timing import start_errors, summary_ms, true_starts, word_start_gaps


@pytest.mark.parametrize("recording, utterances, last_start", [
    ("librispeech_librivox_concat", 16, 142.94),
    ("ljspeech_LJ001_0001-0032_longform", 32, 225.52),
])
def test_true_starts_add_up_to_the_recording(speech_rows, recording, utterances, last_start):
    from tests.conftest import SPEECH

    row = next(r for r in speech_rows if r["id"] == recording)
    starts = true_starts(recording, SPEECH)
    assert len(starts) == utterances and starts[0] == 0.0
    assert starts[-1] == pytest.approx(last_start, abs=0.002)
    assert starts[-1] < float(row["duration_s"]) < starts[-1] + 30
    assert all(a < b for a, b in zip(starts, starts[1:]))


def test_each_true_start_is_scored_by_the_nearest_predicted_start():
    errors = start_errors([0.0, 10.0, 20.0], [0.2, 9.5, 10.1, 26.0])
    assert errors == pytest.approx([0.2, 0.1, 6.0])
    assert summary_ms(errors) == pytest.approx((200.0, 4840.0))
    assert np.isinf(start_errors([1.0], [])).all()


def test_word_gaps_survive_a_long_stretch_only_one_side_has():
    """Words matched by text in order: a stretch of six words only one transcript has (a
    hallucination, a dropped sentence) costs those words, not the ones after it."""
    ours = [("Hello,", 0.0), ("world", 0.5), *[(f"x{i}", 1.0 + i) for i in range(6)],
            ("and", 8.0), ("goodbye.", 8.4)]
    theirs = [("hello", 0.1), ("world", 0.5), ("and", 8.2), ("goodbye", 8.4)]
    assert np.allclose(word_start_gaps(ours, theirs), [0.1, 0.0, 0.2, 0.0])
    assert word_start_gaps([], theirs) == []
