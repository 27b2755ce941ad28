"""Beam search for the graph runtimes, on the same encoder pass, prompt pass, logit filters
and score formula as the greedy and sampling loops of ``runtimes.decode.loops``."""

from __future__ import annotations

import numpy as np

from runtimes.base import Decoded, DecodingOptions
from runtimes.decode.filters import log_softmax
from runtimes.decode.step import StepModel, SuppressRules, avg_logprob, encoder_pass, prompt_pass


def beam_search(model: StepModel, features: np.ndarray, prompts: list[list[int]],
                options: DecodingOptions, rules: SuppressRules) -> list[Decoded]:
    """Beam search with ``beam_size`` beams per input, scores = sum of log-probabilities /
    number of generated tokens (length penalty 1, as transformers' and CTranslate2's
    defaults); an input stops when it has ``beam_size`` finished hypotheses."""
    k, n = options.beam_size, len(prompts)
    cross = model.select(encoder_pass(model, features), np.repeat(np.arange(n), k))
    logits, cache, no_speech = prompt_pass(model, np.repeat(np.asarray(prompts, np.int64), k,
                                                            axis=0), cross, rules, options.scored)
    scores = np.tile(np.r_[0.0, np.full(k - 1, -np.inf)], n)  # only beam 0 starts alive
    seqs: list[list[int]] = [[] for _ in range(n * k)]
    done: list[list[tuple[float, float, list[int]]]] = [[] for _ in range(n)]  # (score, sum, ids)
    chain = rules.chain(options)
    for step in range(options.max_new_tokens):
        chain.apply(logits, seqs)
        with np.errstate(invalid="ignore"):  # dead placeholder beams may be all -inf
            total = (log_softmax(logits) + scores[:, None]).reshape(n, -1)  # (n, k * vocab)
        last = step + 1 == options.max_new_tokens
        rows, tokens, new_scores = [], [], []
        for i in range(n):
            for beam, token, score in _next_beams(total[i], i, k, logits.shape[-1], seqs,
                                                  done[i], rules.eot, last):
                rows.append(beam)
                tokens.append(token)
                new_scores.append(score)
        if all(len(d) >= k for d in done) or last:
            break
        order = np.asarray(rows)
        seqs = [seqs[r] + [t] for r, t in zip(rows, tokens)]
        scores = np.asarray(new_scores)
        cache = model.select(cache, order)
        logits, cache = model.decode_step(np.asarray(tokens, np.int64)[:, None], cache, cross)
    best = [max(d, key=lambda h: h[0]) if d else (0.0, 0.0, []) for d in done]
    if not options.scored:
        return [Decoded(ids) for _, _, ids in best]
    return [Decoded(ids, avg_logprob(total, len(ids)), float(no_speech[i * k]))
            for i, (_, total, ids) in enumerate(best)]


def _next_beams(total: np.ndarray, i: int, k: int, vocab: int, seqs: list[list[int]],
                done: list[tuple[float, float, list[int]]], eot: int,
                last: bool) -> list[tuple[int, int, float]]:
    """Input ``i``'s ``k`` beams for the next step, as (beam row, token, score), from its
    top 2k candidates over all beams; finished hypotheses go to ``done`` (score per
    token, total, ids). An input that is finished keeps dead placeholder beams."""
    kept: list[tuple[int, int, float]] = []
    for rank, flat in enumerate(np.argsort(-total)[: 2 * k]):
        beam, token = i * k + flat // vocab, int(flat % vocab)
        score = float(total[flat])
        if len(done) >= k or score == -np.inf:
            break
        if token == eot and rank >= k:
            continue  # as transformers: an end beyond the top k ranks is not a hypothesis
        if token == eot or last:
            ids = seqs[beam] + ([] if token == eot else [token])
            done.append((score / max(len(ids), 1), score, ids))
        elif len(kept) < k:
            kept.append((beam, token, score))
    return kept + [(i * k, eot, -np.inf)] * (k - len(kept))
