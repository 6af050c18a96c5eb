"""N-gram event models with interpolated Kneser-Ney smoothing (Chen & Goodman 1998): Markov
order 1 (a bigram, one event of context) and order 2 (a trigram, two events).

The baselines a neural model must clearly beat on the same held-out split: they know which
event tends to follow which, and nothing of rhythm, harmony or longer context. Both score
the same events as the neural models do: every event of a sequence but its first.

Interpolated Kneser-Ney: the highest order uses raw counts c(.), every lower order uses
continuation counts N1+(. w) (in how many distinct contexts an n-gram was seen, not how
often), each discounted by `discount` and interpolated with the next lower order by the mass
the discount freed; the unigram is interpolated with the uniform distribution, so an event
never seen still has a little probability. Each sequence starts with a start marker (a
context of its own, never predicted), as SRILM, KenLM and nltk pad a sentence with <s>: a
piece's first pair is a continuation like any other, and its second event has two events
of context. tests/eval/test_ngram_nltk.py checks both models against
nltk.lm.KneserNeyInterpolated; they differ only where nltk's unigram is not interpolated
(`unigram_discount=0` gives nltk's, under which an event never seen after another has
probability 0), and in the default discount (nltk 0.1, here 0.75).
"""

from __future__ import annotations

import numpy as np

DEFAULT_DISCOUNT = 0.75  # Chen & Goodman's usual single discount; nltk's default is 0.1


def _contexts(tokens: np.ndarray, offsets: np.ndarray, start: int) -> tuple[np.ndarray, ...]:
    """(u, v, w) for every event w but each sequence's first: v the event before it, u the
    one before that or `start` (the marker) for a sequence's second event. Never across a
    piece boundary."""
    tokens = tokens.astype(np.int64)
    first = np.zeros(len(tokens), bool)
    first[offsets[:-1][offsets[:-1] < len(tokens)]] = True
    position = np.flatnonzero(~first)
    second = first[position - 1]  # the event before is its sequence's first
    u = np.where(second, start, tokens[np.maximum(position - 2, 0)])
    return u, tokens[position - 1], tokens[position]


def _first_pairs(tokens: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Each non-empty sequence's first event: the marker's only continuations."""
    starts = offsets[:-1][offsets[:-1] < offsets[1:]]
    return tokens[starts[starts < len(tokens)]].astype(np.int64)


def _interpolate(counts: np.ndarray, d: float, lower: np.ndarray) -> np.ndarray:
    """One order of interpolated absolute discounting, a row per context: the discounted
    counts plus the freed mass times `lower`; a context never seen is `lower` itself."""
    total = counts.sum(axis=-1, keepdims=True)
    distinct = (counts > 0).sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        probs = np.maximum(counts - d, 0) / total + d * distinct / total * lower
    return np.where(total > 0, probs, lower)


def continuation_unigram(pair_counts: np.ndarray, d: float) -> np.ndarray:
    """P(w) from N1+(. w), the number of distinct events (or the start marker) seen before w,
    discounted by `d` and interpolated with the uniform distribution."""
    vocab = pair_counts.shape[1]
    return _interpolate((pair_counts > 0).sum(axis=0).astype(np.float64), d,
                        np.full(vocab, 1.0 / vocab))


class BigramKN:
    """Order 1: P(w | v) from raw pair counts over the continuation unigram."""

    def __init__(self, vocab_size: int, discount: float = DEFAULT_DISCOUNT,
                 unigram_discount: float | None = None):
        self.vocab_size = vocab_size
        self.discount = discount
        self.unigram_discount = discount if unigram_discount is None else unigram_discount
        self.log_probs: np.ndarray | None = None  # (context incl. the marker, next event)

    def pair_counts(self, tokens: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """c(v w) with the marker as the last context row: (vocab_size + 1, vocab_size)."""
        v = self.vocab_size
        _, prev, nxt = _contexts(tokens, offsets, v)
        counts = np.zeros((v + 1, v))
        np.add.at(counts, (prev, nxt), 1)
        np.add.at(counts[v], _first_pairs(tokens, offsets), 1)
        return counts

    def fit(self, tokens: np.ndarray, offsets: np.ndarray) -> BigramKN:
        counts = self.pair_counts(tokens, offsets)
        self.unigram = continuation_unigram(counts, self.unigram_discount)
        with np.errstate(divide="ignore"):  # unigram_discount=0: an unseen event has p = 0
            self.log_probs = np.log(_interpolate(counts, self.discount, self.unigram[None, :]))
        return self

    def log_probs_of(self, tokens: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """log P of every predicted event (all but each sequence's first), in order."""
        _, prev, nxt = _contexts(tokens, offsets, self.vocab_size)
        return self.log_probs[prev, nxt]

    def nll(self, tokens: np.ndarray, offsets: np.ndarray) -> float:
        """Mean negative log-likelihood in nats per predicted event."""
        log_probs = self.log_probs_of(tokens, offsets)
        return float(-log_probs.mean()) if len(log_probs) else 0.0


class TrigramKN:
    """Order 2: P(w | u v) from raw triple counts, over P(w | v) from continuation counts
    N1+(. v w), over the continuation unigram. Triple counts are sparse (sorted int64 keys),
    so a 388-event vocabulary needs no 388**3 table."""

    def __init__(self, vocab_size: int, discount: float = DEFAULT_DISCOUNT,
                 unigram_discount: float | None = None):
        self.vocab_size = vocab_size
        self.discount = discount
        self.unigram_discount = discount if unigram_discount is None else unigram_discount

    def fit(self, tokens: np.ndarray, offsets: np.ndarray) -> TrigramKN:
        v, d = self.vocab_size, self.discount
        pairs = BigramKN(v, d, self.unigram_discount).pair_counts(tokens, offsets)
        unigram = continuation_unigram(pairs, self.unigram_discount)
        u, prev, nxt = _contexts(tokens, offsets, v)
        self.keys, self.counts = np.unique((u * v + prev) * v + nxt, return_counts=True)
        # N1+(. v w): the distinct events (or the marker) seen before each pair v w.
        continuation = np.bincount(self.keys % (v * v), minlength=v * v).reshape(v, v)
        self.middle = _interpolate(continuation.astype(np.float64), d, unigram[None, :])
        contexts, where = np.unique(self.keys // v, return_inverse=True)
        self.contexts = contexts
        self.context_total = np.bincount(where, weights=self.counts)
        self.context_distinct = np.bincount(where).astype(np.float64)
        return self

    def log_probs_of(self, tokens: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """log P of every predicted event (all but each sequence's first), in order."""
        v, d = self.vocab_size, self.discount
        u, prev, nxt = _contexts(tokens, offsets, v)
        probs = self.middle[prev, nxt]
        context = u * v + prev
        if len(self.contexts):
            c = np.clip(np.searchsorted(self.contexts, context), 0, len(self.contexts) - 1)
            seen = self.contexts[c] == context  # else the pair's order alone, as nltk
            key = context[seen] * v + nxt[seen]
            k = np.clip(np.searchsorted(self.keys, key), 0, len(self.keys) - 1)
            count = np.where(self.keys[k] == key, self.counts[k], 0)
            total = self.context_total[c[seen]]
            backoff = d * self.context_distinct[c[seen]] / total
            probs[seen] = np.maximum(count - d, 0) / total + backoff * probs[seen]
        with np.errstate(divide="ignore"):
            return np.log(probs)

    def nll(self, tokens: np.ndarray, offsets: np.ndarray) -> float:
        """Mean negative log-likelihood in nats per predicted event."""
        log_probs = self.log_probs_of(tokens, offsets)
        return float(-log_probs.mean()) if len(log_probs) else 0.0
