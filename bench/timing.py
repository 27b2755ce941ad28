"""How far segment timestamps are from the truth, on recordings whose truth is known.

The two ``longform`` recordings are real utterances joined with fixed silences
(``bench/data/longform_parts.json``), so each utterance's true start is the sum of the
durations and gaps before it. A transcript's error at an utterance is the distance from
its true start to the nearest predicted segment start; the report gives the median and
90th percentile over utterances, in ms. The true start is where the utterance's file
begins, so a model that starts segments at the speech onset is charged the file's leading
silence (a few hundred ms in LibriSpeech); that is the measure the project's issue 16 set.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

PARTS_FILE = Path(__file__).parent / "data" / "longform_parts.json"


def true_starts(recording_id: str, speech_dir: Path) -> list[float]:
    """Seconds at which each utterance of a ``longform`` recording starts."""
    from runtimes.audio.files import duration_s, load_audio

    spec = json.loads(PARTS_FILE.read_text())[recording_id]
    starts, at = [], 0.0
    for part in spec["parts"]:
        starts.append(round(at, 3))
        at += duration_s(load_audio(Path(speech_dir) / part)) + spec["gap_s"]
    return starts


def known_starts(clips, speech_dir: Path) -> dict[int, list[float]]:
    """True utterance starts of the clips that are recordings listed in the parts file
    (index among ``clips`` -> starts); empty when none is."""
    known = json.loads(PARTS_FILE.read_text())
    return {i: true_starts(clip.id, speech_dir) for i, clip in enumerate(clips)
            if clip.id in known}


def start_errors(truth: Sequence[float], predicted: Sequence[float]) -> np.ndarray:
    """|nearest predicted start - true start| for each true start, in seconds."""
    if not len(predicted):
        return np.full(len(truth), np.inf)
    predicted = np.asarray(sorted(predicted))
    return np.asarray([np.abs(predicted - t).min() for t in truth])


def summary_ms(errors: np.ndarray) -> tuple[float, float]:
    """(median, 90th percentile) of errors in ms."""
    return float(np.median(errors) * 1000), float(np.percentile(errors, 90) * 1000)


def word_start_gaps(ours: Sequence[tuple[str, float]],
                    theirs: Sequence[tuple[str, float]]) -> list[float]:
    """|start difference| in seconds of the words two transcripts share: (word, start)
    pairs whose texts (punctuation and case ignored) difflib aligns in its longest matching
    blocks, so an inserted, dropped or differently decoded stretch costs its own words,
    not the rest of a long recording (a matcher that looked a few words ahead lost its
    place for good on the 233 s recording: 18% of the words matched)."""
    from difflib import SequenceMatcher

    def norm(word: str) -> str:
        return word.strip(" .,?!;:\"'").lower()

    matcher = SequenceMatcher(None, [norm(w) for w, _ in ours], [norm(w) for w, _ in theirs],
                              autojunk=False)
    return [abs(ours[block.a + k][1] - theirs[block.b + k][1])
            for block in matcher.get_matching_blocks() for k in range(block.size)]
