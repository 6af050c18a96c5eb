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
        self.sequence_index = np.flatnonzero(keep)  # kept sequence -> sequence of the corpus
        self.last_sequences = np.zeros(0, dtype=np.int64)  # of the last batch, for conditioning

    @property
    def num_tokens(self) -> int:
        return int((self.ends - self.starts).sum())

    def batch(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        pick = self.rng.integers(0, self.cumulative[-1], size=batch_size)
        seq = np.searchsorted(self.cumulative, pick, side="right")
        self.last_sequences = self.sequence_index[seq]
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


def conditioned_window_batches(
    tokens: np.ndarray,
    offsets: np.ndarray,
    conditions: np.ndarray,
    window: int,
    stride: int,
    max_tokens: int = 16384,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Whole held-out sequences for a model with a bounded context, each window led by its
    sequence's conditioning token.

    Scores the same tokens as `sequence_batches` (every one after the first of each sequence)
    exactly once: the first window scores its own, each later window (`stride` further on)
    only its last `stride` tokens, which so see at least `window - stride` tokens of context.
    """
    rows = []  # (sequence, first token, first scored token, end)
    for s, (begin, end) in enumerate(zip(offsets[:-1], offsets[1:], strict=True)):
        start, scored = begin, begin + 1
        while scored < end:
            stop = min(start + window, end)
            rows.append((s, start, scored, stop))
            scored, start = stop, start + stride
    per_batch = max(1, max_tokens // window)
    for i in range(0, len(rows), per_batch):
        group = rows[i : i + per_batch]
        width = max(stop - start for _, start, _, stop in group)
        x = np.zeros((len(group), width), dtype=np.int64)
        y = np.full_like(x, IGNORE)
        for row, (s, start, scored, stop) in enumerate(group):
            x[row, 0] = conditions[s]
            x[row, 1 : stop - start] = tokens[start : stop - 1]
            y[row, scored - start : stop - start] = tokens[scored:stop]
        yield torch.from_numpy(x), torch.from_numpy(y)


def length_buckets(
    x: torch.Tensor, y: torch.Tensor, parts: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """A batch as `parts` micro-batches of windows of similar length, each cut to its longest.

    Attention costs the square of a window's length, and most chorales are shorter than a
    window: sorting by length before cutting saves most of the padding's cost.
    """
    lengths = (y != IGNORE).sum(1)
    order = torch.argsort(lengths)
    for chunk in torch.chunk(order, max(1, min(parts, len(order)))):
        width = max(int(lengths[chunk].max()), 1)
        yield x[chunk, :width], y[chunk, :width]
