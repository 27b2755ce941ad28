"""Word timestamps' shared steps: DTW, the median filter, words from tokens, punctuation."""

import numpy as np
import pytest

from runtimes.base import Alignment
from runtimes.decode.alignment import dtw, median_filter
from runtimes.transcript.words import (
    Word,
    _merge_punctuation,
    assign,
    split_words,
    words_of,
)


def _dtw_loops(x):
    """openai/whisper's dtw_cpu, cell by cell: the reference."""
    n, m = x.shape
    cost = np.full((n + 1, m + 1), np.inf, np.float32)
    trace = -np.ones((n + 1, m + 1))
    cost[0, 0] = 0
    for j in range(1, m + 1):
        for i in range(1, n + 1):
            c0, c1, c2 = cost[i - 1, j - 1], cost[i - 1, j], cost[i, j - 1]
            c, t = (c0, 0) if c0 < c1 and c0 < c2 else (c1, 1) if c1 < c0 and c1 < c2 else (c2, 2)
            cost[i, j], trace[i, j] = x[i - 1, j - 1] + c, t
    i, j = n, m
    trace[0, :], trace[:, 0] = 2, 1
    path = []
    while i > 0 or j > 0:
        path.append((i - 1, j - 1))
        i, j = {0: (i - 1, j - 1), 1: (i - 1, j), 2: (i, j - 1)}[trace[i, j]]
    return np.asarray(path[::-1]).T


@pytest.mark.parametrize("shape", [(1, 1), (3, 9), (12, 40), (40, 12)])
def test_dtw_by_anti_diagonals_is_openais_path(shape):
    x = np.random.default_rng(sum(shape)).normal(size=shape).astype(np.float32)
    text, time = dtw(x)
    want = _dtw_loops(x)
    assert np.array_equal(text, want[0]) and np.array_equal(time, want[1])
    assert text[-1] == shape[0] - 1 and time[-1] == shape[1] - 1


def test_median_filter_is_a_sliding_median_with_reflected_edges():
    x = np.array([[5.0, 1, 9, 2, 8, 3]])
    padded = [9, 1, 5, 1, 9, 2, 8, 3, 8, 2]  # reflect by 2 each side (width 5)
    want = [np.median(padded[i:i + 5]) for i in range(6)]
    assert np.allclose(median_filter(x, 5), [want])


@pytest.fixture(scope="module")
def tokenizer(tinyen_hf):
    from runtimes.decode.tokens import load_tokenizer

    return load_tokenizer(tinyen_hf, multilingual=False)


def test_words_start_at_spaces_and_punctuation_stands_alone(tokenizer):
    ids = tokenizer._tok.encode(" Hello, world's end.", add_special_tokens=False).ids
    words = [tokenizer.decode_raw(g) for g in split_words(ids, tokenizer.decode_raw, "en")]
    assert words == [" Hello", ",", " world's", " end", "."]
    assert "".join(words) == " Hello, world's end."


def test_words_of_a_path_and_punctuation_merged_into_words(tokenizer):
    ids = tokenizer._tok.encode(" Hi, you.", add_special_tokens=False).ids  # 4 tokens
    assert len(ids) == 4
    # path: token k jumps at frame 10 * k (0.2 s apart); the end token at frame 40
    text = np.repeat(np.arange(5), 10)
    time = np.arange(50)
    words = words_of(Alignment(text, time, np.full(4, 0.5)), ids, tokenizer.decode_raw, "en")
    kept = [(w.word, w.start, w.end) for w in words if w.word]
    assert kept == [(" Hi,", 0.0, 0.2), (" you.", 0.4, 0.6)]
    assert assign(words, [2, 2]) == [[words[0]], [words[2]]]


def test_opening_punctuation_joins_the_next_word():
    words = [Word(0.0, 0.1, ' "', 1.0, (1,)), Word(0.1, 0.5, "Go", 1.0, (2,)),
             Word(0.5, 0.6, '"', 1.0, (3,))]
    merged = _merge_punctuation(words)
    assert [w.word for w in merged] == ["", ' "Go"', ""]
    assert merged[1].tokens == (1, 2, 3) and merged[1].start == 0.1
