"""Accuracy and timing statistics, computed the same way for every row."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

_SPELLING = Path(__file__).parent / "data" / "english_spelling.json"


@lru_cache(maxsize=2)
def normalizer(language: str):
    """Whisper's English normaliser (with its spelling map) for "en", the basic one else."""
    from transformers.models.whisper.english_normalizer import (
        BasicTextNormalizer,
        EnglishTextNormalizer,
    )

    if language == "en":
        return EnglishTextNormalizer(json.loads(_SPELLING.read_text()))
    return BasicTextNormalizer()


def normalizer_name(language: str) -> str:
    return "whisper-english+spelling" if language == "en" else "whisper-basic"


@dataclass(frozen=True)
class ErrorRates:
    """Corpus-level rates: total edits / total reference words (or characters)."""

    wer: float
    cer: float
    words: int


def error_rates(references: list[str], hypotheses: list[str], languages: list[str]) -> ErrorRates:
    """WER and CER over a corpus, after normalising both sides per clip language.

    Clips whose normalised reference is empty are skipped (their WER is undefined).
    """
    pairs = [
        (normalizer(lang)(ref), normalizer(lang)(hyp))
        for ref, hyp, lang in zip(references, hypotheses, languages)
    ]
    pairs = [(r, h) for r, h in pairs if r.strip()]
    if not pairs:
        return ErrorRates(float("nan"), float("nan"), 0)
    refs, hyps = [r for r, _ in pairs], [h for _, h in pairs]
    n_words = sum(len(r.split()) for r in refs)
    try:
        import jiwer
    except ImportError:  # a slim GPU image: the same corpus-level rates, computed here
        return ErrorRates(_rate([r.split() for r in refs], [h.split() for h in hyps]),
                          _rate([list(r) for r in refs], [list(h) for h in hyps]), n_words)
    words = jiwer.process_words(refs, hyps)
    chars = jiwer.process_characters(refs, hyps)
    return ErrorRates(words.wer, chars.cer, n_words)


def clip_word_errors(references: list[str], hypotheses: list[str],
                     languages: list[str]) -> list[int]:
    """Each clip's word edit distance after normalising (the numerator of its WER): the
    figure a per-clip comparison of two systems needs, where a corpus WER hides whether one
    clip lost a phrase or many clips a word each."""
    return [_edit_distance(normalizer(lang)(ref).split(), normalizer(lang)(hyp).split())
            for ref, hyp, lang in zip(references, hypotheses, languages)]


def _rate(references: list[list[str]], hypotheses: list[list[str]]) -> float:
    """Total edit distance / total reference length, as jiwer's corpus-level rates."""
    edits = sum(_edit_distance(r, h) for r, h in zip(references, hypotheses))
    return edits / max(sum(len(r) for r in references), 1)


def _edit_distance(a: list[str], b: list[str]) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, start=1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def token_agreement(reference: list[list[int]], hypothesis: list[list[int]]) -> float:
    """Corpus agreement of two systems' greedy tokens: 1 - total edit distance / total of
    the longer sequence of each clip (edit distance, so one extra comma costs one token)."""
    from exporters.validate import token_agreement as clip_agreement

    longest = [max(len(a), len(b)) for a, b in zip(reference, hypothesis)]
    if not sum(longest):
        return 1.0
    agreed = sum(clip_agreement(tuple(a), tuple(b)) * n
                 for a, b, n in zip(reference, hypothesis, longest))
    return agreed / sum(longest)


def _repeats(text: str, n: int) -> int:
    words = text.lower().split()
    grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    return len(grams) - len(set(grams))


def repeated_ngram_clips(references: list[str], hypotheses: list[str], n: int = 5) -> int:
    """Clips whose transcript repeats word ``n``-grams more often than the reference does:
    the signature of a decoder stuck in a loop (a hallucination signal)."""
    return sum(1 for ref, hyp in zip(references, hypotheses) if _repeats(hyp, n) > _repeats(ref, n))
