"""The fallback and no-speech decisions (faster-whisper's rules) on decoded results."""

from runtimes.base import Decoded, DecodingOptions
from runtimes.decode.fallback import is_silence, needs_fallback, pick_best

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


def _climb(results: dict[float, Decoded], options=LADDER):
    """Drive one window's ladder with ``results`` per temperature: (temperatures asked
    for, the result kept, silent)."""
    from runtimes.decode.fallback import ladder

    texts = {id(d): t for d, t in zip(results.values(), ["ok"] * len(results))}
    texts |= {id(d): LOOP for d in results.values() if d.tokens == [9]}
    steps = ladder(options, lambda d: d, lambda d: texts[id(d)])
    asked = [next(steps)]
    try:
        while True:
            asked.append(steps.send(results[asked[-1]]))
    except StopIteration as done:
        return asked, *done.value


def test_the_ladder_stops_at_the_first_acceptable_result():
    good = Decoded([1], -0.3, 0.01)
    assert _climb({0.0: good}) == ([0.0], good, False)
    loop = Decoded([9], -0.1, 0.01)
    assert _climb({0.0: loop, 0.2: good}) == ([0.0, 0.2], good, False)


def test_the_ladder_keeps_the_likeliest_non_loop_when_all_fail_and_flags_silence():
    loop, weak, weaker = Decoded([9], -0.1, 0.01), Decoded([2], -1.5, 0.01), Decoded([3], -2.0)
    asked, kept, quiet = _climb({0.0: loop, 0.2: weak, 0.4: weaker})
    assert asked == [0.0, 0.2, 0.4] and kept is weak and not quiet
    silent = Decoded([5], -1.2, 0.9)
    assert _climb({0.0: silent}) == ([0.0], silent, True)  # silence: no retry, text dropped
