"""The decoding loops shared by the graph runtimes (ONNX Runtime, OpenVINO, TorchScript and
TensorRT): greedy and beam search over an encoder pass + ``decode_step`` with a KV cache.

It applies the same rules as transformers' and CTranslate2's Whisper generate, as one chain
of logit filters (``runtimes.decode.filters``): the forced prompt, the model's suppress list at
every step, blank and end-of-text suppressed at the first generated step, Whisper's
timestamp rules when timestamps are asked for, and stop at end-of-text or after
``max_new_tokens``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from runtimes.base import Decoded, DecodingOptions
from runtimes.decode.filters import Chain, TimestampRules, build_chain, log_softmax
from runtimes.errors import ArtifactError, OptionError

GENERATION_FILE = "generation_config.json"


@dataclass(frozen=True)
class SuppressRules:
    """The model's token rules, from its generation config: suppressed ids, and the ids
    timestamps need (``no_timestamps``: <|notimestamps|>, the token before the first
    timestamp)."""

    eot: int
    always: tuple[int, ...]
    at_begin: tuple[int, ...]
    no_timestamps: int | None = None
    max_initial_timestamp_index: int | None = 50
    sot: int | None = None

    @property
    def no_speech(self) -> int | None:
        """<|nospeech|> (<|nocaptions|> in English-only vocabularies): the token just before
        <|notimestamps|> in every Whisper vocabulary, as transformers also takes it."""
        return None if self.no_timestamps is None else self.no_timestamps - 1

    @classmethod
    def load(cls, model_dir: Path) -> SuppressRules:
        path = Path(model_dir) / GENERATION_FILE
        if not path.is_file():
            raise ArtifactError(f"{model_dir} has no {GENERATION_FILE}")
        config = json.loads(path.read_text())
        eot = config["eos_token_id"]
        return cls(eot, tuple(config.get("suppress_tokens") or ()),
                   tuple(config.get("begin_suppress_tokens") or (220, eot)),
                   config.get("no_timestamps_token_id"),
                   config.get("max_initial_timestamp_index", 50),
                   config.get("decoder_start_token_id"))

    def chain(self, options: DecodingOptions) -> Chain:
        """The logit filters of a decoding with ``options`` (see ``runtimes.decode.filters``)."""
        stamps = None
        if options.timestamps:
            if self.no_timestamps is None:
                raise ArtifactError(f"this artifact's {GENERATION_FILE} has no "
                                    "no_timestamps_token_id: timestamps cannot be decoded")
            stamps = TimestampRules(self.eot, self.no_timestamps, self.no_timestamps + 1,
                                    self.max_initial_timestamp_index)
        return build_chain(self.eot, self.always, self.at_begin, options.suppress_blank, stamps)


class StepModel(Protocol):
    """What a graph runtime offers the loop."""

    #: Most windows per encoder call (0 = the whole batch). On CPUs the encoder's attention
    #: over 1500 frames gets slower per window in large batches (ONNX int8 tiny.en, 2 cores:
    #: 92 ms/window alone, 184 ms/window in a batch of 8), while the decoder steps gain the
    #: most from batching, so the loop encodes in chunks and decodes the whole batch.
    encoder_batch: int

    def cross_cache(self, features: np.ndarray) -> Any:
        """Encoder pass; returns what ``decode_step`` needs of the audio."""

    def empty_cache(self, batch: int) -> Any:
        """An empty self-attention cache for ``batch`` sequences."""

    def decode_step(self, tokens: np.ndarray, cache: Any, cross: Any,
                    lengths: np.ndarray | None = None) -> tuple[np.ndarray, Any]:
        """Logits (batch, vocab) of the last position and the extended cache. ``lengths``:
        each row's real cache length when rows differ (right-aligned, padded on the left);
        None = every row has the whole cache."""

    def select(self, cache: Any, rows: np.ndarray) -> Any:
        """The cache (or cross cache) of the given batch rows, in that order."""

    def concat(self, parts: list[Any]) -> Any:
        """One cross cache from the cross caches of consecutive chunks of a batch."""


def encoder_pass(model: StepModel, features: np.ndarray) -> Any:
    """``model.cross_cache`` of the batch, ``model.encoder_batch`` windows per call."""
    size = model.encoder_batch or len(features)
    if len(features) <= size:
        return model.cross_cache(features)
    return model.concat([model.cross_cache(features[start:start + size])
                         for start in range(0, len(features), size)])


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


def prompt_pass(model: StepModel, prompts: np.ndarray, cross: Any, rules: SuppressRules,
                scored: bool) -> tuple[np.ndarray, Any, np.ndarray]:
    """The prompt's decoder pass: (next-token logits, cache, no-speech probabilities).

    Scored, the prompt runs in two calls, up to <|startoftranscript|> and the rest, since
    the no-speech probability is read at that token (openai/whisper's ``sot_index``); the
    cache is the same. Unscored, or where the prompt has no such token, one call and nan.
    """
    empty = model.empty_cache(len(prompts))
    nan = np.full(len(prompts), np.nan)
    if not scored or rules.sot is None or rules.no_speech is None \
            or rules.sot not in prompts[0].tolist():
        return (*model.decode_step(prompts, empty, cross), nan)
    at = prompts[0].tolist().index(rules.sot) + 1
    if not (prompts[:, at - 1] == rules.sot).all():
        return (*model.decode_step(prompts, empty, cross), nan)
    logits, cache = model.decode_step(np.ascontiguousarray(prompts[:, :at]), empty, cross)
    no_speech = np.exp(log_softmax(logits.astype(np.float64))[:, rules.no_speech])
    if at < prompts.shape[1]:
        logits, cache = model.decode_step(np.ascontiguousarray(prompts[:, at:]), cache, cross)
    return logits, cache, no_speech


def avg_logprob(total: float, n_tokens: int) -> float:
    """A transcript's score: its summed log-probabilities over its tokens and the end token
    (openai/whisper's ``sum_logprobs / (len(tokens) + 1)``, length penalty None). The one
    formula every loop and the server's stepper report as ``avg_logprob``."""
    return float(total / (n_tokens + 1))


def most_likely(logits: np.ndarray) -> np.ndarray:
    """Greedy choice: each row's highest-scoring token after the filters."""
    return logits.argmax(-1)


@dataclass(frozen=True)
class Choice:
    """What one decoding step chose for each batch row.

    Attributes:
        tokens: the token picked (end-of-text for rows that had already ended).
        logprobs: its log-probability, for the rows that are scored and alive (0 elsewhere).
        ended: the row picked end-of-text or has ``max_new_tokens`` tokens now.
    """

    tokens: np.ndarray
    logprobs: np.ndarray
    ended: np.ndarray


def choose(logits: np.ndarray, histories: list[list[int]],
           filters: Callable[[np.ndarray, list[list[int]]], None],
           pick: Callable[[np.ndarray], np.ndarray], eot: int, max_new_tokens: int,
           alive: np.ndarray | None = None, scored: np.ndarray | None = None) -> Choice:
    """The one decoding step, for the offline loops (greedy, sampling) and the server's
    stepper alike: the logit filters (in place), the pick, the chosen token's score, the
    token appended to its row's history, and the stop checks.

    Args:
        logits: (rows, vocab) next-token logits; filtered in place.
        histories: each row's generated tokens so far (appended to).
        filters: applies the logit filter chain(s) to logits given the histories.
        pick: chooses a token per row from the filtered logits.
        eot: the end-of-text token.
        max_new_tokens: the most tokens a row may generate.
        alive: rows still decoding (others get end-of-text; None: all).
        scored: rows whose log-probabilities are summed (None: none).
    """
    rows = len(histories)
    alive = np.ones(rows, bool) if alive is None else alive
    filters(logits, histories)
    tokens = np.where(alive, pick(logits), eot)
    logprobs = np.zeros(rows)
    if scored is not None and (index := np.flatnonzero(scored & alive)).size:
        with np.errstate(invalid="ignore"):  # finished rows may be all -inf
            chosen = log_softmax(logits[index].astype(np.float64))
        logprobs[index] = chosen[np.arange(index.size), tokens[index]]
    for history, token, live in zip(histories, tokens, alive):
        if live and token != eot:
            history.append(int(token))
    ended = (tokens == eot) | np.asarray([len(h) >= max_new_tokens for h in histories])
    return Choice(tokens, logprobs, ended)


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


def token_scores(logits: np.ndarray, prompt: list[int], found: list[list[int]],
                 options: DecodingOptions, rules: SuppressRules,
                 temperature: float = 0.0) -> list[Decoded]:
    """``Decoded`` of ids decoded elsewhere, scored from teacher-forced logits
    (rows, len(prompt) + longest + 1, vocab) through the same filter chain as the loops."""
    chain = rules.chain(options)
    start = len(prompt) - 1  # the position whose logits give the first generated token
    sums = np.zeros(len(found))
    for t in range(logits.shape[1] - start):
        rows = [r for r, ids in enumerate(found) if t <= len(ids)]
        if not rows:
            break
        step = logits[rows, start + t].astype(np.float64)
        chain.apply(step, [found[r][:t] for r in rows])
        chosen = [found[r][t] if t < len(found[r]) else rules.eot for r in rows]
        with np.errstate(invalid="ignore"):
            sums[rows] += log_softmax(step)[np.arange(len(rows)), chosen]
    no_speech = np.full(len(found), np.nan)
    if rules.sot in prompt and rules.no_speech is not None:
        at_sot = logits[:, prompt.index(rules.sot)].astype(np.float64)
        no_speech = np.exp(log_softmax(at_sot)[:, rules.no_speech])
    return [Decoded(ids, avg_logprob(total, len(ids)), float(p), temperature)
            for ids, total, p in zip(found, sums, no_speech)]


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
        vocab = logits.shape[-1]
        rows, tokens, new_scores = [], [], []
        for i in range(n):
            alive = 0
            for rank, flat in enumerate(np.argsort(-total[i])[: 2 * k]):
                beam, token = i * k + flat // vocab, int(flat % vocab)
                score = float(total[i, flat])
                if len(done[i]) >= k or score == -np.inf:
                    break
                if token == rules.eot and rank >= k:
                    continue  # as transformers: an end beyond the top k ranks is not a hypothesis
                if token == rules.eot or step + 1 == options.max_new_tokens:
                    ids = seqs[beam] + ([] if token == rules.eot else [token])
                    done[i].append((score / max(len(ids), 1), score, ids))
                elif alive < k:
                    rows.append(beam)
                    tokens.append(token)
                    new_scores.append(score)
                    alive += 1
            while alive < k:  # an input that is finished keeps dead placeholder beams
                rows.append(i * k)
                tokens.append(rules.eot)
                new_scores.append(-np.inf)
                alive += 1
        if all(len(d) >= k for d in done) or step + 1 == options.max_new_tokens:
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


def detect_language(model: StepModel, features: np.ndarray, languages: dict[str, int],
                    model_dir: Path) -> list[str]:
    """Most likely language token after <|startoftranscript|>, as openai/whisper does."""
    from runtimes.decode.tokens import load_tokenizer

    if not languages:
        raise ArtifactError(f"{model_dir} records no language tokens (English-only model?)")
    sot = load_tokenizer(model_dir, True).sot
    batch = features.shape[0]
    logits, _ = model.decode_step(np.full((batch, 1), sot, np.int64), model.empty_cache(batch),
                                  encoder_pass(model, features))
    ids = np.asarray(list(languages.values()))
    names = {v: k for k, v in languages.items()}
    return [names[int(i)] for i in ids[logits[:, ids].argmax(-1)]]


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
