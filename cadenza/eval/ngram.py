"""N-gram event models with interpolated Kneser-Ney smoothing: Markov order 1 (a bigram,
one event of context) and order 2 (a trigram, two events).

The baselines a neural model must clearly beat on the same held-out split: they know which
event tends to follow which, and nothing of rhythm, harmony or longer context. Both score
the same events as the neural models do: every event of a sequence but its first.
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


class TrigramKN:
    """Markov order 2: P(w | u v) discounted by `discount`, the freed mass given to the
    bigram P(w | v). Counts are sparse (sorted int64 keys), so a 388-event vocabulary needs
    no 388**3 table. The second event of a sequence has one event of context: the bigram."""

    def __init__(self, vocab_size: int, discount: float = 0.75):
        self.vocab_size = vocab_size
        self.discount = discount
        self.bigram = BigramKN(vocab_size, discount)

    def _triples(self, tokens: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, ...]:
        """(context key u*V+v, next w, has_u, v) for every predicted event; `has_u` is False
        for each sequence's second event, which has one event of context only."""
        prev, nxt = _bigrams(tokens, offsets)
        tokens = tokens.astype(np.int64)
        inside = np.ones(len(tokens), bool)
        inside[offsets[:-1][offsets[:-1] < len(tokens)]] = False
        position = np.flatnonzero(inside)
        has_u = np.zeros(len(position), bool)
        has_u[1:] = inside[position[1:] - 1] & (position[1:] >= 2)
        before = tokens[np.maximum(position - 2, 0)]
        return before * self.vocab_size + prev, nxt, has_u, prev

    def fit(self, tokens: np.ndarray, offsets: np.ndarray) -> TrigramKN:
        self.bigram.fit(tokens, offsets)
        context, nxt, has_u, _ = self._triples(tokens, offsets)
        keys = context[has_u] * self.vocab_size + nxt[has_u]
        self.keys, self.counts = np.unique(keys, return_counts=True)
        contexts, where = np.unique(self.keys // self.vocab_size, return_inverse=True)
        self.contexts = contexts
        self.context_total = np.bincount(where, weights=self.counts)
        self.context_distinct = np.bincount(where).astype(np.float64)
        return self

    def log_probs_of(self, tokens: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """log P of every predicted event (all but each sequence's first), in order."""
        context, nxt, has_u, prev = self._triples(tokens, offsets)
        lower = np.exp(self.bigram.log_probs[prev, nxt])
        probs = lower.copy()
        if len(self.contexts) == 0:  # trained on nothing longer than two events
            return np.log(probs)
        c = np.clip(np.searchsorted(self.contexts, context), 0, len(self.contexts) - 1)
        seen = has_u.copy()
        seen[seen] = self.contexts[c[seen]] == context[seen]
        key = context[seen] * self.vocab_size + nxt[seen]
        k = np.clip(np.searchsorted(self.keys, key), 0, len(self.keys) - 1)
        count = np.where(self.keys[k] == key, self.counts[k], 0)
        total = self.context_total[c[seen]]
        backoff = self.discount * self.context_distinct[c[seen]] / total
        probs[seen] = np.maximum(count - self.discount, 0) / total + backoff * lower[seen]
        return np.log(probs)

    def nll(self, tokens: np.ndarray, offsets: np.ndarray) -> float:
        """Mean negative log-likelihood in nats per predicted event."""
        log_probs = self.log_probs_of(tokens, offsets)
        return float(-log_probs.mean()) if len(log_probs) else 0.0
