"""An order-2 n-gram (bigram) event model with interpolated Kneser-Ney smoothing.

The baseline a neural model must clearly beat on the same held-out split: it knows which
event tends to follow which, and nothing of rhythm, harmony or longer context.
"""

from __future__ import annotations

import numpy as np


def _bigrams(tokens: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(previous, next) pairs inside each sequence, never across a piece boundary."""
    tokens = tokens.astype(np.int64)
    inside = np.ones(len(tokens), bool)
    inside[offsets[:-1][offsets[:-1] < len(tokens)]] = False  # a sequence's first token has no past
    position = np.flatnonzero(inside)
    return tokens[position - 1], tokens[position]


class BigramKN:
    def __init__(self, vocab_size: int, discount: float = 0.75):
        self.vocab_size = vocab_size
        self.discount = discount
        self.log_probs: np.ndarray | None = None

    def fit(self, tokens: np.ndarray, offsets: np.ndarray) -> BigramKN:
        prev, nxt = _bigrams(tokens, offsets)
        v, d = self.vocab_size, self.discount
        counts = np.zeros((v, v))
        np.add.at(counts, (prev, nxt), 1)
        # Continuation probability: in how many contexts does an event appear (add-one so
        # that an event never seen in training still has a little mass).
        continuation = (counts > 0).sum(axis=0) + 1.0
        continuation /= continuation.sum()
        context_total = counts.sum(axis=1, keepdims=True)
        distinct = (counts > 0).sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            discounted = np.maximum(counts - d, 0) / context_total
            backoff = d * distinct / context_total
        seen = context_total[:, 0] > 0
        probs = np.where(
            seen[:, None], discounted + backoff * continuation[None, :], continuation[None, :]
        )
        self.log_probs = np.log(probs)
        return self

    def nll(self, tokens: np.ndarray, offsets: np.ndarray) -> float:
        """Mean negative log-likelihood in nats per predicted event."""
        prev, nxt = _bigrams(tokens, offsets)
        return float(-self.log_probs[prev, nxt].mean()) if len(prev) else 0.0
