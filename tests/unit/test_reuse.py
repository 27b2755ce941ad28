"""The last batch's encoder output is reused only by alignment, and only for the same
features (runtimes.decode.reuse, runtimes.decode.step.encoder_pass)."""

import numpy as np

from runtimes.decode.reuse import LastPass
from runtimes.decode.step import encoder_pass


class _Encoder:
    """A step model's encoder side: counts its calls (the real ones are in the slow tier)."""

    encoder_batch = 0

    def __init__(self) -> None:
        self.calls = 0
        self.last_pass = LastPass()

    def cross_cache(self, features):
        self.calls += 1
        return features.sum() + self.calls


def test_alignment_reuses_what_decoding_kept_for_the_same_features():
    model = _Encoder()
    features = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    decoded = encoder_pass(model, features)
    assert encoder_pass(model, features.copy(), reuse=True) == decoded  # same content
    assert model.calls == 1
    other = features.copy()
    other[1, 2, 3] += 1e-3
    encoder_pass(model, other, reuse=True)
    assert model.calls == 2


def test_decoding_the_same_features_again_encodes_again():
    """A warm-up, a timing run or a retry must pay for its encoder."""
    model = _Encoder()
    features = np.ones((1, 3, 4), np.float32)
    encoder_pass(model, features)
    encoder_pass(model, features)
    assert model.calls == 2


def test_the_kept_output_is_let_go_before_the_next_is_computed():
    memo = LastPass()
    memo.keep(np.zeros(3, np.float32), [1])
    memo.forget()
    assert memo.recall(np.zeros(3, np.float32)) is None
