"""The one decoding step and what every decoding loop shares: the model's suppress rules,
the graph runtime's step interface, the encoder and prompt passes, the score formula
(``avg_logprob``) and ``choose`` (filters, pick, score, stop), which the offline loops
(``loops``, ``beam``) and the server's stepper (``runtimes.serve.stepper``) all call.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from runtimes.base import Decoded, DecodingOptions
from runtimes.decode.filters import Chain, TimestampRules, build_chain, log_softmax
from runtimes.errors import ArtifactError

GENERATION_FILE = "generation_config.json"


@dataclass(frozen=True)
class SuppressRules:
    """The model's token rules, from its generation config: suppressed ids, and the ids
    timestamps need (``no_timestamps``: <|notimestamps|>, the token before the first
    timestamp).

    Beyond the config's list, no control token is ever generated: <|startoftranscript|>
    through <|notimestamps|> (languages, tasks, <|startofprev|>, <|nospeech|>), and no
    timestamp without timestamps. openai/whisper and faster-whisper always suppress the task,
    start and no-speech tokens whatever the config says, whisper.cpp all of these; a trained
    model's config lists most of them, but a fine-tuned checkpoint whose config suppresses
    nothing decoded <|startoftranscript|> and language tokens as text (the PyTorch reference
    and the graph runtimes then disagreed with whisper.cpp at a tiny random model's first
    step).
    """

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
        return cls.of(json.loads(path.read_text()))

    @classmethod
    def of(cls, config: dict[str, Any]) -> SuppressRules:
        """The rules of a generation config (as a dict)."""
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
        return build_chain(self.eot, self.suppressed(), self.at_begin, options.suppress_blank,
                           stamps, self.text_only_from(options))

    def suppressed(self) -> tuple[int, ...]:
        """The config's list and the control tokens, suppressed at every step."""
        controls = () if self.sot is None or self.no_timestamps is None else tuple(
            range(self.sot, self.no_timestamps + 1))
        return tuple(sorted(set(self.always) | set(controls)))

    def text_only_from(self, options: DecodingOptions) -> int | None:
        """The first timestamp, from which every id is suppressed in a decoding without
        timestamps (None with timestamps, or where the config does not say)."""
        if options.timestamps or self.no_timestamps is None:
            return None
        return self.no_timestamps + 1

    def listed(self, options: DecodingOptions, vocab_size: int) -> list[int]:
        """Every id the chain suppresses at every step, as one list: for the runtimes whose
        own generate takes a suppress list (transformers, CTranslate2)."""
        start = self.text_only_from(options)
        stamps = range(start, vocab_size) if start is not None else range(0)
        return sorted(set(self.suppressed()) | set(stamps))


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


def encoder_pass(model: StepModel, features: np.ndarray, reuse: bool = False) -> Any:
    """``model.cross_cache`` of the batch, ``model.encoder_batch`` windows per call. Where
    the model keeps a ``LastPass`` (``last_pass``), the result is kept, and ``reuse`` (word
    alignment after decoding) takes the kept one for the same features."""
    memo = getattr(model, "last_pass", None)
    if memo is None:
        return _encoder_pass(model, features)
    return memo.through(features, lambda: _encoder_pass(model, features), reuse)


def _encoder_pass(model: StepModel, features: np.ndarray) -> Any:
    size = model.encoder_batch or len(features)
    if len(features) <= size:
        return model.cross_cache(features)
    return model.concat([model.cross_cache(features[start:start + size])
                         for start in range(0, len(features), size)])


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
