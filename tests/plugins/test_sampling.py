"""Host-side sampling: the knobs do what they say."""

from __future__ import annotations

import numpy as np
import pytest

from cadenza.plugins.sampling import Knobs, guided, sample, sample_rows

LOGITS = np.log(np.array([0.5, 0.3, 0.15, 0.05]))


def frequencies(knobs: Knobs, n: int = 20000) -> np.ndarray:
    rng = np.random.default_rng(0)
    draws = [sample(LOGITS, knobs, rng) for _ in range(n)]
    return np.bincount(draws, minlength=len(LOGITS)) / n


def test_temperature_one_follows_the_distribution():
    np.testing.assert_allclose(frequencies(Knobs()), [0.5, 0.3, 0.15, 0.05], atol=0.015)


def test_temperature_zero_is_greedy():
    assert set(np.flatnonzero(frequencies(Knobs(temperature=0.0), 100))) == {0}


def test_low_temperature_sharpens_and_high_flattens():
    assert frequencies(Knobs(temperature=0.5))[0] > 0.6
    assert frequencies(Knobs(temperature=3.0))[0] < 0.4


def test_top_k_keeps_only_the_k_best():
    freq = frequencies(Knobs(top_k=2))
    assert freq[2:].sum() == 0
    assert freq[0] == pytest.approx(0.5 / 0.8, abs=0.02)


def test_top_p_keeps_the_smallest_set_reaching_p():
    freq = frequencies(Knobs(top_p=0.7))  # 0.5 < 0.7 <= 0.8: the first two
    assert freq[2:].sum() == 0 and freq[1] > 0


def test_same_seed_same_draws():
    knobs = Knobs(temperature=1.3, top_p=0.9)
    a = [sample(LOGITS, knobs, np.random.default_rng(5)) for _ in range(50)]
    b = [sample(LOGITS, knobs, np.random.default_rng(5)) for _ in range(50)]
    assert a == b


@pytest.mark.parametrize(
    "kwargs", [{"temperature": -0.1}, {"top_k": -1}, {"top_p": 0.0}, {"top_p": 1.5}]
)
def test_bad_knob_values_are_refused(kwargs):
    with pytest.raises(ValueError):
        Knobs(**kwargs)


def test_guidance_of_one_is_the_conditional_and_zero_the_unconditional():
    conditional, unconditional = np.array([1.0, 3.0, -2.0]), np.array([0.5, 0.5, 0.5])
    np.testing.assert_allclose(guided(conditional, unconditional, 1.0), conditional)
    np.testing.assert_allclose(guided(conditional, unconditional, 0.0), unconditional)


def test_guidance_above_one_pushes_further_from_the_unconditional():
    conditional, unconditional = np.array([2.0, 0.0]), np.array([1.0, 1.0])
    np.testing.assert_allclose(guided(conditional, unconditional, 3.0), [4.0, -2.0])


def test_sample_rows_draws_one_class_per_row():
    logits = np.full((4, 10), -50.0)
    logits[np.arange(4), [3, 1, 4, 1]] = 50.0
    drawn = sample_rows(logits, Knobs(temperature=1.0), np.random.default_rng(0))
    np.testing.assert_array_equal(drawn, [3, 1, 4, 1])
