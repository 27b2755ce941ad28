"""The decoding loop shared by graph runtimes (ONNX Runtime now; OpenVINO, TorchScript and
TensorRT next): greedy search over an ``encode`` + ``decode_step`` model with a KV cache.

It applies the same rules as transformers' and CTranslate2's Whisper generate: the forced
prompt, the model's suppress list at every step, blank and end-of-text suppressed at the
first generated step, and stop at end-of-text or after ``max_new_tokens``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from runtimes.base import DecodingOptions
from runtimes.errors import ArtifactError, OptionError

GENERATION_FILE = "generation_config.json"


@dataclass(frozen=True)
class SuppressRules:
    """Token ids masked out of the logits (from the model's generation config)."""

    eot: int
    always: tuple[int, ...]
    at_begin: tuple[int, ...]

    @classmethod
    def load(cls, model_dir: Path) -> SuppressRules:
        path = Path(model_dir) / GENERATION_FILE
        if not path.is_file():
            raise ArtifactError(f"{model_dir} has no {GENERATION_FILE}")
        config = json.loads(path.read_text())
        eot = config["eos_token_id"]
        return cls(eot, tuple(config.get("suppress_tokens") or ()),
                   tuple(config.get("begin_suppress_tokens") or (220, eot)))


class StepModel(Protocol):
    """What a graph runtime offers the loop."""

    def cross_cache(self, features: np.ndarray) -> Any:
        """Encoder pass; returns what ``decode_step`` needs of the audio."""

    def empty_cache(self, batch: int) -> Any:
        """An empty self-attention cache for ``batch`` sequences."""

    def decode_step(self, tokens: np.ndarray, cache: Any, cross: Any) -> tuple[np.ndarray, Any]:
        """Logits (batch, vocab) of the last position and the extended cache."""


def greedy(model: StepModel, features: np.ndarray, prompts: list[list[int]],
           options: DecodingOptions, rules: SuppressRules) -> list[list[int]]:
    """Greedy decoding of a batch; returns the ids after the prompt, without end-of-text."""
    if options.beam_size != 1:
        raise OptionError(
            f"beam_size {options.beam_size} is not available on graph runtimes yet; use 1")
    if len({len(p) for p in prompts}) != 1:
        raise OptionError("prompts in one batch must have the same length")
    batch = len(prompts)
    cross = model.cross_cache(features)
    logits, cache = model.decode_step(np.asarray(prompts, np.int64), model.empty_cache(batch),
                                      cross)
    out = np.empty((batch, 0), np.int64)
    done = np.zeros(batch, bool)
    always = list(rules.always)
    for step in range(options.max_new_tokens):
        logits[:, always] = -np.inf
        if step == 0 and options.suppress_blank:
            logits[:, list(rules.at_begin)] = -np.inf
        nxt = np.where(done, rules.eot, logits.argmax(-1))
        done |= nxt == rules.eot
        out = np.concatenate([out, nxt[:, None]], axis=1)
        if done.all() or step + 1 == options.max_new_tokens:
            break
        logits, cache = model.decode_step(nxt[:, None].astype(np.int64), cache, cross)
    return [_until(row.tolist(), rules.eot) for row in out]


def _until(ids: list[int], eot: int) -> list[int]:
    return ids[: ids.index(eot)] if eot in ids else ids
