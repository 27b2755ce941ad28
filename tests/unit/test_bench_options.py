"""The typed options library callers build (the command lines build the same objects)."""

from pathlib import Path

import pytest

from bench.options import BenchOptions, CompareOptions
from runtimes.errors import OptionError


@pytest.mark.parametrize("changes, message", [
    ({"batch_sizes": (1, 0)}, "--batch-sizes must be >= 1, got [1, 0]"),
    ({"limit": 0}, "--limit must be >= 1"),
    ({"repeats": 0}, "--repeats must be >= 1"),
    ({"threads": -1}, "--threads must be >= 0"),
    ({"device": "tpu"}, "--device 'tpu' is not one of: cpu, cuda"),
    ({"beam_size": 0}, "beam_size must be an integer >= 1"),
    ({"long_form": "chunks"}, "long_form 'chunks' is not one of: vad, sequential"),
    ({"word_agreement": True, "faster_whisper": "none", "faster_whisper_batched": "none"},
     "--word-agreement compares word starts with faster-whisper's: it needs a faster-whisper row"),
])
def test_bad_values_fail_before_any_work(changes, message):
    with pytest.raises(OptionError, match=message.replace("[", r"\[").replace("]", r"\]")):
        BenchOptions(Path("m.tsv"), **changes)


def test_comparison_options_and_the_settings_they_record():
    with pytest.raises(OptionError, match="--max-wer-delta must be >= 0"):
        CompareOptions(Path("m.tsv"), max_wer_delta=-1)
    options = CompareOptions(Path("m.tsv"), batch_sizes=(8, 2))
    assert options.sizes == [1, 2, 8] and options.decoding().max_new_tokens == 224
    assert options.faster_whisper_batched == "int8"  # the long-form reference is on by default
    assert BenchOptions(Path("m.tsv")).faster_whisper_batched == "int8"  # bench too
