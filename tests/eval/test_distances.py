"""Intra/inter-set distances, kernel densities, overlapped area and KL divergence."""

from __future__ import annotations

import numpy as np
import pytest

from cadenza.eval import distances as D


def test_intra_set_distances_are_every_pair_once():
    values = np.array([0.0, 1.0, 3.0])
    assert sorted(D.intra_set_distances(values)) == [1.0, 2.0, 3.0]


def test_inter_set_distances_are_euclidean_on_flattened_features():
    a = np.zeros((2, 2, 2))
    b = np.ones((3, 2, 2))
    assert np.allclose(D.inter_set_distances(a, b), 2.0) and len(D.inter_set_distances(a, b)) == 6


def test_kde_is_a_density():
    samples = np.random.default_rng(0).normal(size=200)
    grid = D.density_grid(samples)
    density = D.kde(samples, grid)
    assert np.sum(density) * (grid[1] - grid[0]) == pytest.approx(1.0, abs=1e-3)


def test_kde_bandwidth_is_scotts_rule():
    samples = np.arange(32.0)
    assert D.bandwidth(samples) == pytest.approx(np.std(samples, ddof=1) * 32 ** -0.2)


def test_a_set_overlaps_itself_fully():
    samples = np.random.default_rng(1).normal(size=100)
    assert D.overlapped_area(samples, samples) == pytest.approx(1.0, abs=1e-3)


def test_far_apart_sets_do_not_overlap():
    rng = np.random.default_rng(2)
    assert D.overlapped_area(rng.normal(size=50), 100 + rng.normal(size=50)) < 1e-3


def test_kl_divergence_is_zero_for_the_same_set_and_grows_with_a_shift():
    samples = np.random.default_rng(3).normal(size=100)
    assert D.kl_divergence(samples, samples) == pytest.approx(0.0, abs=1e-9)
    assert 0 < D.kl_divergence(samples, samples + 0.5) < D.kl_divergence(samples, samples + 2)


def test_a_feature_that_never_varies_still_compares():
    row = D.compare_feature("constant", np.ones((4, 3)), np.ones((5, 3)))
    assert row.overlap == pytest.approx(1.0, abs=1e-3) and np.isfinite(row.kl)


def test_compare_feature_fills_one_row_of_the_table():
    rng = np.random.default_rng(4)
    row = D.compare_feature("x", rng.normal(size=(10, 2)), rng.normal(size=(8, 2)) + 5)
    assert row.inter[0] > row.intra_real[0] and row.overlap < 0.5


def test_two_pieces_a_set_give_one_distance_and_a_finite_density():
    row = D.compare_feature("x", np.array([0.0, 1.0]), np.array([0.5, 2.0]))
    assert np.isfinite(row.overlap) and np.isfinite(row.kl)
