"""The fallback and no-speech decisions (faster-whisper's rules) on decoded results."""

from runtimes.base import Decoded, DecodingOptions
from runtimes.fallback import is_silence, needs_fallback, pick_best

LADDER = DecodingOptions(temperature=(0.0, 0.2, 0.4))
LOOP = "the the the the the the the the the the the the the the the the the the the the"


def test_a_likely_varied_result_is_kept():
    assert not needs_fallback(Decoded([1], -0.3, 0.01), "And so my fellow Americans.", LADDER)


def test_a_loop_or_an_unlikely_result_is_decoded_again():
    assert needs_fallback(Decoded([1], -0.3, 0.01), LOOP, LADDER)  # compression ratio > 2.4
    assert needs_fallback(Decoded([1], -1.2, 0.01), "Some words.", LADDER)  # avg < -1


def test_silence_needs_both_a_high_no_speech_probability_and_a_low_log_probability():
    assert is_silence(Decoded([1], -1.2, 0.9), LADDER)
    assert not is_silence(Decoded([1], -0.5, 0.9), LADDER)  # confident text: kept
    assert not is_silence(Decoded([1], -1.2, 0.3), LADDER)
    assert not needs_fallback(Decoded([1], -1.2, 0.9), LOOP, LADDER)  # silence: no retry
    off = DecodingOptions(temperature=(0.0, 0.2), no_speech_threshold=None)
    assert not is_silence(Decoded([1], -5.0, 1.0), off)


def test_when_every_temperature_failed_the_likeliest_non_loop_wins():
    loop, weak, weaker = Decoded([1], -0.1), Decoded([2], -1.5), Decoded([3], -2.0)
    assert pick_best([loop, weak, weaker], [LOOP, "a", "b"], LADDER) is weak
    assert pick_best([loop, Decoded([4], -0.2)], [LOOP, LOOP], LADDER).avg_logprob == -0.1
