"""The decoding loops shared by the graph runtimes (ONNX Runtime, OpenVINO, TorchScript and
TensorRT): greedy and beam search over an encoder pass + ``decode_step`` with a KV cache.

It applies the same rules as transformers' and CTranslate2's Whisper generate, as one chain
of logit filters (``runtimes.filters``): the forced prompt, the model's suppress list at
every step, blank and end-of-text suppressed at the first generated step, Whisper's
timestamp rules when timestamps are asked for, and stop at end-of-text or after
``max_new_tokens``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from runtimes.base import DecodingOptions
from runtimes.errors import ArtifactError, OptionError
from runtimes.filters import Chain, TimestampRules, build_chain

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
                   config.get("max_initial_timestamp_index", 50))

    def chain(self, options: DecodingOptions) -> Chain:
        """The logit filters of a decoding with ``options`` (see ``runtimes.filters``)."""
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


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def _check(prompts: list[list[int]]) -> None:
    if len({len(p) for p in prompts}) != 1:
        raise OptionError("prompts in one batch must have the same length")


def generate(model: StepModel, features: np.ndarray, prompts: list[list[int]],
             options: DecodingOptions, rules: SuppressRules) -> list[list[int]]:
    """Greedy (beam_size 1) or beam search; ids after the prompt, without end-of-text."""
    _check(prompts)
    if options.beam_size == 1:
        return greedy(model, features, prompts, options, rules)
    return beam_search(model, features, prompts, options, rules)


def greedy(model: StepModel, features: np.ndarray, prompts: list[list[int]],
           options: DecodingOptions, rules: SuppressRules) -> list[list[int]]:
    """Greedy decoding. Finished rows are dropped from the batch once at most half of it is
    still running, so one long transcript does not make the whole batch pay for it."""
    chain = rules.chain(options)
    cross = encoder_pass(model, features)
    logits, cache = model.decode_step(np.asarray(prompts, np.int64),
                                      model.empty_cache(len(prompts)), cross)
    out: list[list[int]] = [[] for _ in prompts]
    rows = np.arange(len(prompts))  # which input each batch row decodes
    alive = np.ones(len(rows), bool)  # finished rows stay in the batch until half are
    for step in range(options.max_new_tokens):
        chain.apply(logits, [out[row] for row in rows])
        nxt = np.where(alive, logits.argmax(-1), rules.eot)
        running = nxt != rules.eot
        for row, token in zip(rows[running], nxt[running]):
            out[row].append(int(token))
        if not running.any() or step + 1 == options.max_new_tokens:
            break
        if running.sum() * 2 <= len(rows):
            keep = np.flatnonzero(running)
            rows, nxt = rows[keep], nxt[keep]
            cache, cross = model.select(cache, keep), model.select(cross, keep)
            running = np.ones(len(rows), bool)
        alive = running
        logits, cache = model.decode_step(nxt[:, None].astype(np.int64), cache, cross)
    return out


def beam_search(model: StepModel, features: np.ndarray, prompts: list[list[int]],
                options: DecodingOptions, rules: SuppressRules) -> list[list[int]]:
    """Beam search with ``beam_size`` beams per input, scores = sum of log-probabilities /
    number of generated tokens (length penalty 1, as transformers' and CTranslate2's
    defaults); an input stops when it has ``beam_size`` finished hypotheses."""
    k, n = options.beam_size, len(prompts)
    cross = model.select(encoder_pass(model, features), np.repeat(np.arange(n), k))
    logits, cache = model.decode_step(np.repeat(np.asarray(prompts, np.int64), k, axis=0),
                                      model.empty_cache(n * k), cross)
    scores = np.tile(np.r_[0.0, np.full(k - 1, -np.inf)], n)  # only beam 0 starts alive
    seqs: list[list[int]] = [[] for _ in range(n * k)]
    done: list[list[tuple[float, list[int]]]] = [[] for _ in range(n)]  # (score, ids) per input
    chain = rules.chain(options)
    for step in range(options.max_new_tokens):
        chain.apply(logits, seqs)
        with np.errstate(invalid="ignore"):  # dead placeholder beams may be all -inf
            total = (_log_softmax(logits) + scores[:, None]).reshape(n, -1)  # (n, k * vocab)
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
                    done[i].append((score / max(len(ids), 1), ids))
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
    return [max(d, key=lambda h: h[0])[1] if d else [] for d in done]


def detect_language(model: StepModel, features: np.ndarray, languages: dict[str, int],
                    model_dir: Path) -> list[str]:
    """Most likely language token after <|startoftranscript|>, as openai/whisper does."""
    from runtimes.tokens import load_tokenizer

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
