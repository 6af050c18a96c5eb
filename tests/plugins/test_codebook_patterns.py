"""Codebook patterns: round trips for every pattern and K, and the delay layout by hand."""

from __future__ import annotations

import numpy as np
import pytest

from cadenza.errors import CadenzaError
from cadenza.plugins.codebook_patterns import PATTERN_NAMES, get_pattern

SPECIAL = 1024  # one past a 1024-entry codebook, as the LM's special token


@pytest.mark.parametrize("name", PATTERN_NAMES)
@pytest.mark.parametrize("k", range(1, 9))
def test_round_trip(name, k):
    rng = np.random.default_rng(k)
    codes = rng.integers(0, 1024, size=(k, 37))
    pattern = get_pattern(name, k)
    seq = pattern.build(codes, SPECIAL)
    assert seq.shape == (k, pattern.length(37))
    np.testing.assert_array_equal(pattern.revert(seq), codes)


@pytest.mark.parametrize("name", PATTERN_NAMES)
@pytest.mark.parametrize("k", [1, 4, 8])
def test_special_exactly_where_no_code(name, k):
    codes = np.random.default_rng(0).integers(0, 1024, size=(k, 11))
    pattern = get_pattern(name, k)
    seq = pattern.build(codes, SPECIAL)
    np.testing.assert_array_equal(seq == SPECIAL, ~pattern.mask(11))
    assert pattern.mask(11).sum() == k * 11  # every code placed once


def test_delay_layout_by_hand():
    codes = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    s = SPECIAL
    expected = np.array(
        [
            [1, 2, 3, s, s],
            [s, 4, 5, 6, s],
            [s, s, 7, 8, 9],
        ]
    )
    np.testing.assert_array_equal(get_pattern("delay", 3).build(codes, s), expected)


def test_flatten_layout_by_hand():
    codes = np.array([[1, 2], [3, 4]])
    s = SPECIAL
    expected = np.array([[1, s, 2, s], [s, 3, s, 4]])
    np.testing.assert_array_equal(get_pattern("flatten", 2).build(codes, s), expected)


def test_parallel_is_the_codes():
    codes = np.arange(12).reshape(4, 3)
    np.testing.assert_array_equal(get_pattern("parallel", 4).build(codes, SPECIAL), codes)


def test_delay_revert_of_a_cut_sequence_keeps_complete_frames():
    codes = np.random.default_rng(1).integers(0, 1024, size=(4, 10))
    pattern = get_pattern("delay", 4)
    seq = pattern.build(codes, SPECIAL)[:, :8]  # steps 0..7: frames 0..4 are complete
    np.testing.assert_array_equal(pattern.revert(seq), codes[:, :5])


def test_unknown_pattern_names_the_valid_ones():
    with pytest.raises(CadenzaError, match="delay, parallel, flatten"):
        get_pattern("interleave", 4)


def test_build_refuses_wrong_codebook_count():
    with pytest.raises(CadenzaError, match=r"shape \(4, frames\)"):
        get_pattern("delay", 4).build(np.zeros((3, 5), np.int64), SPECIAL)


@pytest.mark.parametrize("name", PATTERN_NAMES)
@pytest.mark.parametrize("k", [1, 4])
def test_frame_steps_and_placed_agree_with_the_layout(name, k):
    pattern = get_pattern(name, k)
    frames = 7
    steps = pattern.steps(frames)
    for t in range(frames):
        np.testing.assert_array_equal(pattern.frame_steps(t), steps[:, t])
    mask = pattern.mask(frames)
    for s in range(mask.shape[1] - k):  # the tail of a finite sequence lacks later frames
        np.testing.assert_array_equal(pattern.placed(s), mask[:, s])
