"""Temperature fallback and no-speech detection, as openai/whisper's and faster-whisper's
``generate_with_fallback``: a window is decoded again at the next temperature while its
result looks wrong, and a window that looks silent gives no text.

Why per window and in batches: each window's decision depends only on its own result, so
the windows that need another temperature are decoded together and a window's text does not
depend on which others shared its batch (sampling is seeded per window).
"""

from __future__ import annotations

import numpy as np

from runtimes.base import Decoded, DecodingOptions, WhisperRuntime
from runtimes.segments import compression_ratio


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


def decode_with_fallback(runtime: WhisperRuntime, tokenizer, features: np.ndarray,
                         prompts: list[list[int]], options: DecodingOptions,
                         seeds: list[int]) -> list[Decoded]:
    """Each window decoded at the first temperature that gives an acceptable result; silent
    windows come back with no tokens."""
    final: list[Decoded | None] = [None] * len(prompts)
    tried: list[list[tuple[Decoded, str]]] = [[] for _ in prompts]
    todo = list(range(len(prompts)))
    for temperature in options.temperature:
        found = runtime.decode(features[todo], [prompts[i] for i in todo], options,
                               temperature, [seeds[i] for i in todo])
        for i, decoded in zip(todo, found):
            text = tokenizer.decode(decoded.tokens)
            tried[i].append((decoded, text))
            if not needs_fallback(decoded, text, options):
                final[i] = decoded
        todo = [i for i in todo if final[i] is None]
        if not todo:
            break
    for i in todo:
        final[i] = pick_best([d for d, _ in tried[i]], [t for _, t in tried[i]], options)
    return [Decoded([], d.avg_logprob, d.no_speech_prob, d.temperature) if is_silence(d, options)
            else d for d in final]
