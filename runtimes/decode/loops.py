"""The decoding loops shared by the graph runtimes (ONNX Runtime, OpenVINO, TorchScript and
TensorRT): greedy and beam search over an encoder pass + ``decode_step`` with a KV cache.

It applies the same rules as transformers' and CTranslate2's Whisper generate, as one chain
of logit filters (``runtimes.decode.filters``): the forced prompt, the model's suppress list at
every step, blank and end-of-text suppressed at the first generated step, Whisper's
timestamp rules when timestamps are asked for, and stop at end-of-text or after
``max_new_tokens``.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from runtimes.base import Decoded, DecodingOptions
from runtimes.decode.beam import beam_search
from runtimes.decode.filters import log_softmax
from runtimes.decode.step import (
    StepModel,
    SuppressRules,
    avg_logprob,
    choose,
    encoder_pass,
    most_likely,
    prompt_pass,
)
from runtimes.errors import ArtifactError, OptionError


def _check(prompts: list[list[int]]) -> None:
    if len({len(p) for p in prompts}) != 1:
        raise OptionError("prompts in one batch must have the same length")


def decode(model: StepModel, features: np.ndarray, prompts: list[list[int]],
           options: DecodingOptions, rules: SuppressRules, temperature: float = 0.0,
           seeds: list[int] | None = None) -> list[Decoded]:
    """Greedy (beam_size 1), beam search, or at a temperature > 0 sampling of
    ``options.best_of`` candidates per input (the likeliest kept)."""
    _check(prompts)
    if temperature > 0:
        return sample(model, features, prompts, options, rules, temperature,
                      seeds or [options.seed] * len(prompts))
    if options.beam_size == 1:
        return greedy(model, features, prompts, options, rules)
    return beam_search(model, features, prompts, options, rules)


def generate(model: StepModel, features: np.ndarray, prompts: list[list[int]],
             options: DecodingOptions, rules: SuppressRules) -> list[list[int]]:
    """Greedy (beam_size 1) or beam search; ids after the prompt, without end-of-text."""
    return [d.tokens for d in decode(model, features, prompts, options, rules)]


def greedy(model: StepModel, features: np.ndarray, prompts: list[list[int]],
           options: DecodingOptions, rules: SuppressRules) -> list[Decoded]:
    """Greedy decoding: the most likely token at every step."""
    return _run(model, encoder_pass(model, features), np.asarray(prompts, np.int64), options,
                rules, lambda logits, rows: most_likely(logits))


def sample(model: StepModel, features: np.ndarray, prompts: list[list[int]],
           options: DecodingOptions, rules: SuppressRules, temperature: float,
           seeds: list[int]) -> list[Decoded]:
    """``options.best_of`` samples per input at ``temperature``; the one with the highest
    average log-probability is kept. Each candidate row draws from its own generator,
    seeded by (input's seed, candidate), so a row's draws do not depend on its batch."""
    k, n = options.best_of, len(prompts)
    cross = model.select(encoder_pass(model, features), np.repeat(np.arange(n), k))
    rngs = [np.random.default_rng([seed, j]) for seed in seeds for j in range(k)]

    def pick(logits: np.ndarray, rows: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore"):  # finished rows may be all -inf
            cdf = np.cumsum(np.exp(log_softmax(logits.astype(np.float64) / temperature)), -1)
        draws = [min(int(np.searchsorted(c, rngs[r].random() * c[-1], "right")), len(c) - 1)
                 for c, r in zip(cdf, rows)]
        return np.asarray(draws)

    found = _run(model, cross, np.repeat(np.asarray(prompts, np.int64), k, axis=0), options,
                 rules, pick, scored=True)
    best = [max(found[i * k:(i + 1) * k], key=lambda d: d.avg_logprob) for i in range(n)]
    return [replace(d, temperature=temperature) for d in best]


def _run(model: StepModel, cross: Any, prompts: np.ndarray, options: DecodingOptions,
         rules: SuppressRules, pick, scored: bool | None = None) -> list[Decoded]:
    """The token-by-token loop of greedy decoding and sampling; ``pick(logits, rows)``
    chooses each row's next token (``rows``: which input each batch row decodes).

    Finished rows are dropped from the batch once at most half of it is still running, so
    one long transcript does not make the whole batch pay for it.
    """
    scored = options.scored if scored is None else scored
    chain = rules.chain(options)
    logits, cache, no_speech = prompt_pass(model, prompts, cross, rules, scored)
    out: list[list[int]] = [[] for _ in prompts]
    sums = np.zeros(len(prompts))
    rows = np.arange(len(prompts))  # which input each batch row decodes
    alive = np.ones(len(rows), bool)  # finished rows stay in the batch until half are
    for _ in range(options.max_new_tokens):
        choice = choose(logits, [out[row] for row in rows], chain.apply,
                        partial(pick, rows=rows), rules.eot, options.max_new_tokens,
                        alive, np.full(len(rows), scored))
        sums[rows] += choice.logprobs
        running = alive & ~choice.ended
        if not running.any():
            break
        nxt = choice.tokens
        if running.sum() * 2 <= len(rows):
            keep = np.flatnonzero(running)
            rows, nxt = rows[keep], nxt[keep]
            cache, cross = model.select(cache, keep), model.select(cross, keep)
            running = np.ones(len(rows), bool)
        alive = running
        logits, cache = model.decode_step(nxt[:, None].astype(np.int64), cache, cross)
    if not scored:
        return [Decoded(ids) for ids in out]
    return [Decoded(ids, avg_logprob(total, len(ids)), float(p))
            for ids, total, p in zip(out, sums, no_speech)]


def language_probabilities(model: StepModel, features: np.ndarray, languages: dict[str, int],
                           model_dir: Path) -> list[dict[str, float]]:
    """Each item's probability of each language token after <|startoftranscript|> (the
    softmax over the language tokens alone, as openai/whisper's detect_language)."""
    from runtimes.decode.tokens import load_tokenizer

    if not languages:
        raise ArtifactError(f"{model_dir} records no language tokens (English-only model?)")
    sot = load_tokenizer(model_dir, True).sot
    batch = features.shape[0]
    logits, _ = model.decode_step(np.full((batch, 1), sot, np.int64), model.empty_cache(batch),
                                  encoder_pass(model, features))
    ids = np.asarray(list(languages.values()))
    scores = logits[:, ids].astype(np.float64)
    probs = np.exp(scores - scores.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    return [dict(zip(languages, map(float, row))) for row in probs]


def concat_rows(parts: list[Any]) -> Any:
    """Numpy caches (lists of arrays, or dicts of them) of consecutive rows, joined."""
    if isinstance(parts[0], dict):
        return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
    return [np.concatenate(values) for values in zip(*parts)]


def select_rows(cache: Any, rows: np.ndarray) -> Any:
    """Rows of a numpy cache (a list of arrays, or a dict of them), in the given order."""
    if isinstance(cache, dict):
        return {name: value[rows] for name, value in cache.items()}
    return [value[rows] for value in cache]
