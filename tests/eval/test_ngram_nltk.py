"""The n-gram baselines are interpolated Kneser-Ney as nltk.lm.KneserNeyInterpolated defines
it (nltk, a dev dependency): every held-out event's probability agrees on a slice of real
chorales, at nltk's default discount (0.1) and at ours (0.75).

nltk sees each piece as a sentence led by one "<s>" (our start marker) and is asked about
the events we score, with the context we use: one event (bigram), two (trigram; "<s>" and
the first event for a piece's second). Its unigram is not interpolated with the uniform
distribution, so `unigram_discount=0` here; what that changes is checked at the end."""

from __future__ import annotations

import numpy as np
import pytest

from cadenza.corpus.prepare import load_split
from cadenza.eval.ngram import BigramKN, TrigramKN

nltk_lm = pytest.importorskip("nltk.lm")
from nltk.util import everygrams  # noqa: E402  (after the skip: nltk is a dev dependency)

VOCAB = 388


def pieces(tokens: np.ndarray, offsets: np.ndarray) -> list[list[str]]:
    return [["<s>", *map(str, tokens[a:b].tolist())] for a, b in zip(offsets[:-1], offsets[1:],
                                                                     strict=True)]


def nltk_probabilities(order: int, discount: float, train: list[list[str]],
                       held_out: list[list[str]]) -> np.ndarray:
    model = nltk_lm.KneserNeyInterpolated(order, discount=discount)
    model.fit([list(everygrams(piece, max_len=order)) for piece in train],
              vocabulary_text=[word for piece in train for word in piece])
    return np.array([model.score(piece[i], tuple(piece[max(i - order + 1, 0):i]))
                     for piece in held_out for i in range(2, len(piece))])


@pytest.fixture(scope="module")
def splits(tiny_corpus):
    return load_split(tiny_corpus, "train"), load_split(tiny_corpus, "valid")


@pytest.mark.parametrize("discount", [0.1, 0.75])
@pytest.mark.parametrize("order, model", [(2, BigramKN), (3, TrigramKN)])
def test_agrees_with_nltk_kneser_ney(order, model, discount, splits):
    (tokens, offsets), (held, held_offsets) = splits
    theirs = nltk_probabilities(order, discount, pieces(tokens, offsets),
                                pieces(held, held_offsets))
    fitted = model(VOCAB, discount, unigram_discount=0).fit(tokens, offsets)
    ours = np.exp(fitted.log_probs_of(held, held_offsets))
    assert len(ours) == len(theirs) == len(held) - (len(held_offsets) - 1)
    assert np.abs(ours - theirs).max() < 1e-12
    assert (theirs == 0).any()  # the slice holds events nltk cannot score


def test_where_nltk_gives_nothing_the_baseline_keeps_a_little(splits):
    # nltk's unigram is not smoothed: an event never seen after another has probability 0
    # and an infinite NLL. The baseline's unigram is interpolated with the uniform one.
    (tokens, offsets), (held, held_offsets) = splits
    nltk_like = TrigramKN(VOCAB, unigram_discount=0).fit(tokens, offsets)
    baseline = TrigramKN(VOCAB).fit(tokens, offsets)
    unseen = np.isinf(nltk_like.log_probs_of(held, held_offsets))
    assert unseen.any() and np.isfinite(baseline.log_probs_of(held, held_offsets)).all()
    assert np.isfinite(baseline.nll(held, held_offsets))


@pytest.mark.parametrize("model", [BigramKN, TrigramKN])
def test_every_context_is_a_distribution(model, splits):
    (tokens, offsets), _ = splits
    fitted = model(VOCAB).fit(tokens, offsets)
    # Every next event after a few real contexts, each scored as a little piece of its own.
    firsts = tokens[offsets[:-1]][:3]
    contexts = [(int(a), int(b)) for a, b in zip(tokens[:40:7], tokens[1:41:7], strict=True)]
    for u, v in contexts + [(int(f), int(f)) for f in firsts]:
        probe = np.array([[u, v, w] for w in range(VOCAB)]).ravel()
        log_probs = (fitted.log_probs_of(probe, np.arange(0, len(probe) + 1, 3))[1::2]
                     if model is TrigramKN else fitted.log_probs[v])
        assert np.exp(log_probs).sum() == pytest.approx(1.0, abs=1e-9)
