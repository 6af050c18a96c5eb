"""Batches for training and held-out evaluation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cadenza.training.data import (
    IGNORE,
    WindowSampler,
    conditioned_window_batches,
    length_buckets,
    sequence_batches,
)


def corpus(lengths: list[int]) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return np.arange(offsets[-1], dtype=np.int64) % 388, offsets


def scored(batches) -> list[int]:
    return sorted(int(t) for _, y in batches for t in y[y != IGNORE])


@pytest.mark.parametrize("window, stride", [(8, 4), (16, 8), (5, 2), (100, 50)])
def test_windowed_evaluation_scores_the_same_tokens_as_whole_sequences(window, stride):
    tokens, offsets = corpus([3, 8, 9, 31, 2, 17])
    tokens = np.arange(len(tokens))  # distinct values: a token scored twice would show
    conditions = np.full(len(offsets) - 1, 400)
    windowed = scored(conditioned_window_batches(tokens, offsets, conditions, window, stride))
    assert windowed == scored(sequence_batches(tokens, offsets))


def test_every_window_starts_with_its_sequences_condition_and_sees_its_own_events():
    tokens, offsets = corpus([12, 20])
    conditions = np.array([400, 401])
    for x, y in conditioned_window_batches(tokens, offsets, conditions, 8, 4):
        for row_x, row_y in zip(x, y, strict=True):
            assert int(row_x[0]) in (400, 401)
            targets = row_y != IGNORE
            # The input at t is the event before the target at t (the condition before the first).
            inputs = row_x[1:][targets[1:]]
            assert torch.equal(inputs + 1, row_y[1:][targets[1:]])


def test_length_buckets_keep_every_target_once():
    tokens, offsets = corpus([40, 5, 70, 12, 9, 64])
    x, y = WindowSampler(tokens, offsets, 32, seed=1).batch(12)
    parts = list(length_buckets(x, y, 3))
    assert len(parts) == 3
    assert sum(int((ys != IGNORE).sum()) for _, ys in parts) == int((y != IGNORE).sum())
    assert all(xs.size(1) <= x.size(1) for xs, _ in parts)


def test_sampler_tells_which_sequence_each_window_came_from():
    tokens, offsets = corpus([1, 30, 30])  # the first sequence is too short to sample
    sampler = WindowSampler(tokens, offsets, 8, seed=3)
    x, _ = sampler.batch(16)
    for row, sequence in zip(x, sampler.last_sequences, strict=True):
        assert offsets[sequence] <= int(row[0]) < offsets[sequence + 1]
    assert 0 not in sampler.last_sequences

