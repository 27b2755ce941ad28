"""Temperature fallback and no-speech detection, as openai/whisper's and faster-whisper's
``generate_with_fallback``: a window is decoded again at the next temperature while its
result looks wrong, and a window that looks silent gives no text.

Why per window and in batches: each window's decision depends only on its own result, so
the windows that need another temperature are decoded together and a window's text does not
depend on which others shared its batch (sampling is seeded per window).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Generator
from dataclasses import replace
from typing import TypeVar

import numpy as np

from runtimes.base import Decoded, DecodingOptions, WhisperRuntime

R = TypeVar("R")  # a decoding's result: a Decoded, or the server's (Decoded, words)


def compression_ratio(text: str) -> float:
    """len(text) / len(zlib(text)), openai/whisper's and faster-whisper's measure."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def needs_fallback(decoded: Decoded, text: str, options: DecodingOptions) -> bool:
    """Too repetitive (compression ratio) or too unlikely (average log-probability), unless
    it is silence (no-speech probability high and log-probability low), which no other
    temperature would fix."""
    low = options.log_prob_threshold is not None and decoded.avg_logprob < options.log_prob_threshold
    if is_silence(decoded, options):
        return False
    loop = (options.compression_ratio_threshold is not None
            and compression_ratio(text) > options.compression_ratio_threshold)
    return loop or low


def is_silence(decoded: Decoded, options: DecodingOptions) -> bool:
    """faster-whisper's skip rule: no-speech probability above the threshold and the average
    log-probability not above its threshold."""
    if options.no_speech_threshold is None or not decoded.no_speech_prob > options.no_speech_threshold:
        return False
    return options.log_prob_threshold is None or decoded.avg_logprob <= options.log_prob_threshold


def pick_best(candidates: list[Decoded], texts: list[str], options: DecodingOptions) -> Decoded:
    """When every temperature failed: the likeliest result that is not a loop, if any
    (faster-whisper's choice), else the likeliest."""
    limit = options.compression_ratio_threshold
    fine = [d for d, t in zip(candidates, texts) if limit is None or compression_ratio(t) <= limit]
    return max(fine or candidates, key=lambda d: d.avg_logprob)


def ladder(options: DecodingOptions, decoded: Callable[[R], Decoded],
           text: Callable[[R], str]) -> Generator[float, R, tuple[R, bool]]:
    """One window's temperature ladder, written once for the offline pipeline and the
    server: it yields the temperature to decode at next and is sent that decoding's
    result (``decoded`` and ``text`` read a result), and returns the result kept and
    whether the window is silent (its text then dropped).

    The first acceptable result ends the ladder; when every temperature failed, the
    likeliest result that is not a loop is kept (``pick_best``)."""
    tried: list[R] = []
    for temperature in options.temperature:
        result = yield temperature
        tried.append(result)
        if not needs_fallback(decoded(result), text(result), options):
            break
    else:
        best = pick_best([decoded(r) for r in tried], [text(r) for r in tried], options)
        result = next(r for r in tried if decoded(r) is best)
    return result, is_silence(decoded(result), options)


def silent(decoded: Decoded) -> Decoded:
    """A window judged silent: its scores kept, its tokens dropped."""
    return replace(decoded, tokens=[])


def decode_with_fallback(runtime: WhisperRuntime, tokenizer, features: np.ndarray,
                         prompts: list[list[int]], options: DecodingOptions,
                         seeds: list[int]) -> list[Decoded]:
    """Each window through its ``ladder``; windows at the same temperature are decoded in
    one batch. Silent windows come back with no tokens."""
    text = lambda d: tokenizer.decode(d.tokens)  # noqa: E731
    ladders = [ladder(options, lambda d: d, text) for _ in prompts]
    wanted = {i: next(steps) for i, steps in enumerate(ladders)}
    final: list[Decoded | None] = [None] * len(prompts)
    while wanted:
        temperature = min(wanted.values())
        todo = [i for i, t in wanted.items() if t == temperature]
        found = runtime.decode(features[todo], [prompts[i] for i in todo], options,
                               temperature, [seeds[i] for i in todo])
        for i, decoded in zip(todo, found):
            try:
                wanted[i] = ladders[i].send(decoded)
            except StopIteration as done:
                kept, quiet = done.value
                final[i] = silent(kept) if quiet else kept
                del wanted[i]
    return final
