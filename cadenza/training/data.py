"""Batches from a prepared corpus: random training windows, whole held-out sequences."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

IGNORE = -100  # target value that cross-entropy skips (padding)


class WindowSampler:
    """Random windows of `seq_len + 1` tokens, each inside one sequence (never across pieces).

    Every start position of every sequence is equally likely, so long pieces weigh as much
    as they are long. A sequence shorter than a window is taken whole and padded.
    """

    def __init__(self, tokens: np.ndarray, offsets: np.ndarray, seq_len: int, seed: int):
        self.tokens = tokens
        self.seq_len = seq_len
        starts, ends = offsets[:-1], offsets[1:]
        keep = ends - starts >= 2
        self.starts, self.ends = starts[keep], ends[keep]
        if len(self.starts) == 0:
            raise ValueError("no sequence of two or more events to train on")
        self.positions = np.maximum(self.ends - self.starts - seq_len, 1)  # start choices per seq
        self.cumulative = np.cumsum(self.positions)
        self.rng = np.random.default_rng(seed)

    @property
    def num_tokens(self) -> int:
        return int((self.ends - self.starts).sum())

    def batch(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        pick = self.rng.integers(0, self.cumulative[-1], size=batch_size)
        seq = np.searchsorted(self.cumulative, pick, side="right")
        offset = pick - (self.cumulative[seq] - self.positions[seq])
        first = self.starts[seq] + offset
        index = first[:, None] + np.arange(self.seq_len + 1)[None, :]
        valid = index < self.ends[seq][:, None]
        window = np.where(valid, self.tokens[np.minimum(index, len(self.tokens) - 1)], 0)
        x = torch.from_numpy(window[:, :-1].astype(np.int64))
        y = torch.from_numpy(np.where(valid[:, 1:], window[:, 1:], IGNORE).astype(np.int64))
        return x, y

    def state(self) -> dict:
        return self.rng.bit_generator.state

    def set_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state


def sequence_batches(
    tokens: np.ndarray, offsets: np.ndarray, max_tokens: int = 32768
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Whole sequences, padded into batches of about `max_tokens`, for held-out NLL.

    Every token after the first of each sequence is predicted exactly once, from the whole
    history of its own piece: the figure an n-gram baseline is compared with.
    """
    lengths = np.diff(offsets)
    order = np.argsort(lengths)
    i = 0
    while i < len(order):
        longest = lengths[order[i]]
        group = [order[i]]
        i += 1
        while i < len(order) and lengths[order[i]] * (len(group) + 1) <= max(max_tokens, longest):
            group.append(order[i])
            i += 1
        width = int(max(lengths[g] for g in group))
        x = np.zeros((len(group), max(width - 1, 1)), dtype=np.int64)
        y = np.full_like(x, IGNORE)
        for row, g in enumerate(group):
            seq = tokens[offsets[g] : offsets[g + 1]].astype(np.int64)
            x[row, : len(seq) - 1] = seq[:-1]
            y[row, : len(seq) - 1] = seq[1:]
        yield torch.from_numpy(x), torch.from_numpy(y)
