"""The bigram baseline the shipped model is compared with."""

from __future__ import annotations

import numpy as np

from cadenza.corpus.prepare import load_split
from cadenza.eval.ngram import BigramKN


def test_bigram_baseline_is_a_distribution_and_beats_uniform(tiny_corpus):
    model = BigramKN(388).fit(*load_split(tiny_corpus, "train"))
    assert abs(float(np.exp(model.log_probs).sum(1).mean()) - 1) < 1e-9
    assert model.nll(*load_split(tiny_corpus, "valid")) < 5.96


def test_no_pair_across_a_piece_boundary():
    tokens = np.array([1, 2, 3, 4], dtype=np.int16)
    model = BigramKN(5).fit(tokens, np.array([0, 2, 4]))
    seen = np.exp(model.log_probs)
    assert seen[1, 2] > seen[2, 3]  # 2 -> 3 spans two pieces: never counted
