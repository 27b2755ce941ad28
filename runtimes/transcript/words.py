"""Word timestamps from cross-attention, as openai/whisper and faster-whisper compute them.

Why here and not in the engines: the steps after the model (normalising the alignment heads'
attention, the median filter, dynamic time warping, splitting tokens into words, merging
punctuation, the duration hacks) are the same whatever computed the attention, so the graph
and PyTorch runtimes share them, and CTranslate2 (whose ``align`` runs the DTW itself)
shares everything after its (text index, time index) path. A runtime only returns an
``Alignment``.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, replace

import numpy as np

from runtimes.base import Alignment

TOKENS_PER_SECOND = 50  # encoder frames per second: the DTW's time index unit
PREPEND_PUNCTUATIONS = "\"'“¿([{-"
APPEND_PUNCTUATIONS = "\"'.。,，!！?？:：”)]}、"
SENTENCE_END_MARKS = ".。!！?？"
UNSPACED_LANGUAGES = ("zh", "ja", "th", "lo", "my", "yue")


@dataclass(frozen=True)
class Word:
    """A word with its start and end in seconds and the mean probability of its tokens."""

    start: float
    end: float
    word: str
    probability: float
    tokens: tuple[int, ...] = ()


def split_words(tokens: list[int], decode, language: str | None) -> list[list[int]]:
    """Text ids grouped into words (openai/whisper's ``split_to_word_tokens``): a token
    that starts with a space or is punctuation starts a word; languages written without
    spaces split at every complete character sequence."""
    pieces, current, full, offset = [], [], decode(tokens), 0
    for token in tokens:  # complete unicode pieces: a character may span tokens
        current.append(token)
        text = decode(current)
        bad = text.find("\ufffd")
        if bad < 0 or full[offset + bad: offset + bad + 1] == "\ufffd":
            pieces.append((text, current))
            current, offset = [], offset + len(text)
    if language in UNSPACED_LANGUAGES:
        return [ids for _, ids in pieces]
    words: list[list[int]] = []
    for text, ids in pieces:
        if not words or text.startswith(" ") or text.strip() in string.punctuation:
            words.append(list(ids))
        else:
            words[-1] += ids
    return words


def words_of(alignment: Alignment, tokens: list[int], decode,
             language: str | None) -> list[Word]:
    """Words of one window's text ids with their times in window seconds."""
    if not tokens:
        return []
    groups = split_words(tokens, decode, language)
    bounds = np.cumsum([0] + [len(g) for g in groups])
    jumps = np.r_[True, np.diff(alignment.text_indices) != 0]
    times = alignment.time_indices[jumps] / TOKENS_PER_SECOND
    times = np.r_[times, np.full(max(0, len(tokens) + 1 - len(times)), times[-1])]
    probs = np.asarray(alignment.token_probs, np.float64)
    words = [Word(float(times[a]), float(times[b]), decode(g), float(probs[a:b].mean()), tuple(g))
             for g, a, b in zip(groups, bounds[:-1], bounds[1:])]
    return _merge_punctuation(_clip_long_words(words))


def _clip_long_words(words: list[Word]) -> list[Word]:
    """faster-whisper's hack: a word next to a sentence end that lasts more than twice the
    median word (at most 0.7 s) is cut to that."""
    durations = np.asarray([w.end - w.start for w in words])
    durations = durations[durations > 0]
    if not len(durations):
        return words
    longest = 2 * min(0.7, float(np.median(durations)))
    out = list(words)
    for i in range(1, len(out)):
        w = out[i]
        if w.end - w.start > longest:
            if w.word in SENTENCE_END_MARKS:
                out[i] = replace(w, end=w.start + longest)
            elif out[i - 1].word in SENTENCE_END_MARKS:
                out[i] = replace(w, start=w.end - longest)
    return out


def _merge_punctuation(words: list[Word]) -> list[Word]:
    """Opening punctuation joins the word after it, closing punctuation the word before."""
    out = list(words)
    j = len(out) - 1
    for i in range(len(out) - 2, -1, -1):
        before, after = out[i], out[j]
        if before.word.startswith(" ") and before.word.strip() in PREPEND_PUNCTUATIONS:
            out[j] = replace(after, word=before.word + after.word,
                             tokens=before.tokens + after.tokens)
            out[i] = replace(before, word="", tokens=())
        else:
            j = i
    i = 0
    for j in range(1, len(out)):
        before, after = out[i], out[j]
        if not before.word.endswith(" ") and after.word in APPEND_PUNCTUATIONS:
            out[i] = replace(before, word=before.word + after.word,
                             tokens=before.tokens + after.tokens)
            out[j] = replace(after, word="", tokens=())
        else:
            i = j
    return out


def align_windows(runtime, tokenizer, features: np.ndarray, prompts: list[list[int]],
                  decoded: list, num_frames: list[int],
                  languages: list[str | None]) -> list[list[Word]]:
    """Each decoded window's words (window seconds): its text ids aligned by ``runtime``
    with its text-only prompt, one ``align`` call per distinct prompt (windows with no
    text have no words). Shared by the pipeline and the server."""
    texts = [[t for t in d.tokens if t < tokenizer.eot] for d in decoded]
    out: list[list[Word]] = [[] for _ in decoded]
    for prompt in {tuple(p) for p in prompts}:
        rows = [i for i, p in enumerate(prompts) if tuple(p) == prompt and texts[i]]
        if not rows:
            continue
        found = runtime.align(features[rows], list(prompt), [texts[i] for i in rows],
                              [num_frames[i] for i in rows])
        for i, alignment in zip(rows, found):
            out[i] = words_of(alignment, texts[i], tokenizer.decode_raw, languages[i])
    return out


def assign(words: list[Word], token_counts: list[int]) -> list[list[Word]]:
    """Words shared out to consecutive segments by their text tokens' counts (a merged
    punctuation mark travels with its word); empty merged-away words dropped."""
    out: list[list[Word]] = []
    k = 0
    for count in token_counts:
        taken, mine = 0, []
        while k < len(words) and taken < count:
            if words[k].word:
                mine.append(words[k])
            taken += len(words[k].tokens)
            k += 1
        out.append(mine)
    return out
