"""The n-gram baselines (order 1: bigram, order 2: trigram) models are compared with."""

from __future__ import annotations

import numpy as np
import pytest

from cadenza.corpus.prepare import load_split
from cadenza.eval.ngram import BigramKN, TrigramKN


def test_bigram_baseline_is_a_distribution_and_beats_uniform(tiny_corpus):
    model = BigramKN(388).fit(*load_split(tiny_corpus, "train"))
    assert abs(float(np.exp(model.log_probs).sum(1).mean()) - 1) < 1e-9
    assert model.nll(*load_split(tiny_corpus, "valid")) < 5.96


def test_no_pair_across_a_piece_boundary():
    tokens = np.array([1, 2, 3, 4], dtype=np.int16)
    model = BigramKN(5).fit(tokens, np.array([0, 2, 4]))
    seen = np.exp(model.log_probs)
    assert seen[1, 2] > seen[2, 3]  # 2 -> 3 spans two pieces: never counted


def test_trigram_is_a_distribution_in_a_seen_context():
    tokens = np.array([1, 2, 3, 1, 2, 4, 1, 2, 3], dtype=np.int16)
    model = TrigramKN(5).fit(tokens, np.array([0, 9]))
    # Score every next event w after the context (1, 2) as its own little sequence.
    probe = np.array([[1, 2, w] for w in range(5)], dtype=np.int16).ravel()
    log_probs = model.log_probs_of(probe, np.arange(0, 16, 3))
    assert np.exp(log_probs[1::2]).sum() == pytest.approx(1.0)


def test_trigram_uses_two_events_of_context():
    # After 1 2 comes 3, after 0 2 comes 4: a bigram cannot tell them apart, a trigram can.
    tokens = np.array([1, 2, 3, 0, 2, 4] * 20, dtype=np.int16)
    offsets = np.arange(0, len(tokens) + 1, 3)
    trigram, bigram = TrigramKN(5).fit(tokens, offsets), BigramKN(5).fit(tokens, offsets)
    assert trigram.nll(tokens, offsets) < bigram.nll(tokens, offsets) - 0.3


def test_trigram_scores_the_same_events_as_the_bigram(tiny_corpus):
    tokens, offsets = load_split(tiny_corpus, "valid")
    model = TrigramKN(388).fit(*load_split(tiny_corpus, "train"))
    assert len(model.log_probs_of(tokens, offsets)) == len(tokens) - (len(offsets) - 1)
