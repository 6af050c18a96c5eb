"""Codebook patterns: how K parallel streams of codec tokens become one sequence for an LM.

A codec gives K codes per audio frame, `codes[k, t]`. The LM predicts one *step* at a time,
emitting one token per codebook per step (K output heads), so a pattern says at which step
`s` each code is placed: `seq[k, s]`. Where a pattern places no code it holds a special
token, which the LM reads as "nothing here" and is never trained to predict.

- delay (MusicGen's default): codebook k is delayed by k steps, `seq[k, t + k] = codes[k, t]`.
  Coarse codebooks come first, so code k of a frame is predicted after codes 0..k-1 of the
  same frame are known, at the price of K - 1 extra steps in all (not per frame).
- parallel: `seq[k, t] = codes[k, t]`, the K codes of a frame predicted together,
  independently given the past: fastest, coarsest.
- flatten: one code per step, frame by frame, `seq[k, t * K + k] = codes[k, t]`: every code
  sees all codes before it, at K times the steps.

Every pattern keeps the same (K, S) layout, so one LM architecture runs all of them, as in
audiocraft. numpy only: the codec-lm plugin runs this on the host.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cadenza.errors import CadenzaError

PATTERN_NAMES = ("delay", "parallel", "flatten")
DEFAULT_PATTERN = "delay"


@dataclass(frozen=True)
class CodebookPattern:
    """One pattern for `num_codebooks` codebooks."""

    name: str
    num_codebooks: int

    def steps(self, frames: int) -> np.ndarray:
        """(K, frames) int64: the step at which each code `codes[k, t]` is placed."""
        k = np.arange(self.num_codebooks)[:, None]
        t = np.arange(frames)[None, :]
        if self.name == "delay":
            return np.broadcast_to(t + k, (self.num_codebooks, frames)).astype(np.int64)
        if self.name == "parallel":
            return np.broadcast_to(t, (self.num_codebooks, frames)).astype(np.int64)
        return (t * self.num_codebooks + k).astype(np.int64)  # flatten

    def frame_steps(self, frame: int) -> np.ndarray:
        """(K,) the steps at which frame `frame`'s codes are placed (constant time: a
        generator asks this at every step of an endless stream)."""
        k = np.arange(self.num_codebooks)
        if self.name == "delay":
            return frame + k
        if self.name == "parallel":
            return np.full(self.num_codebooks, frame)
        return frame * self.num_codebooks + k

    def placed(self, step: int) -> np.ndarray:
        """(K,) bool: where step `step` holds a code rather than the special token."""
        k = np.arange(self.num_codebooks)
        if self.name == "delay":
            return step - k >= 0
        if self.name == "parallel":
            return np.full(self.num_codebooks, step >= 0)
        return k == step % self.num_codebooks

    def length(self, frames: int) -> int:
        """Steps in the pattern sequence of `frames` frames."""
        if frames <= 0:
            return 0
        if self.name == "delay":
            return frames + self.num_codebooks - 1
        if self.name == "parallel":
            return frames
        return frames * self.num_codebooks

    def complete_frames(self, length: int) -> int:
        """Frames whose every code lies within the first `length` steps: what `revert` returns
        for a sequence cut short, e.g. while it is being generated."""
        if self.name == "delay":
            return max(length - self.num_codebooks + 1, 0)
        if self.name == "parallel":
            return max(length, 0)
        return max(length, 0) // self.num_codebooks

    def mask(self, frames: int) -> np.ndarray:
        """(K, S) bool: True where the sequence holds a code, False where the special token."""
        mask = np.zeros((self.num_codebooks, self.length(frames)), dtype=bool)
        rows = np.arange(self.num_codebooks)[:, None]
        mask[rows, self.steps(frames)] = True
        return mask

    def build(self, codes: np.ndarray, special: int) -> np.ndarray:
        """(K, T) codes -> (K, S) pattern sequence, `special` where no code is placed."""
        codes = np.asarray(codes)
        if codes.ndim != 2 or codes.shape[0] != self.num_codebooks:
            raise CadenzaError(
                f"codebook pattern {self.name}: codes must have shape "
                f"({self.num_codebooks}, frames), got {codes.shape}"
            )
        frames = codes.shape[1]
        seq = np.full((self.num_codebooks, self.length(frames)), special, dtype=codes.dtype)
        rows = np.arange(self.num_codebooks)[:, None]
        seq[rows, self.steps(frames)] = codes
        return seq

    def revert(self, seq: np.ndarray) -> np.ndarray:
        """(K, S) pattern sequence -> (K, T) codes of its complete frames (see
        `complete_frames`); the special tokens are dropped."""
        seq = np.asarray(seq)
        if seq.ndim != 2 or seq.shape[0] != self.num_codebooks:
            raise CadenzaError(
                f"codebook pattern {self.name}: a sequence must have shape "
                f"({self.num_codebooks}, steps), got {seq.shape}"
            )
        frames = self.complete_frames(seq.shape[1])
        rows = np.arange(self.num_codebooks)[:, None]
        return seq[rows, self.steps(frames)]


def get_pattern(name: str, num_codebooks: int) -> CodebookPattern:
    """The pattern called `name` for `num_codebooks` codebooks; a bad name or count is a
    CadenzaError naming the valid choices."""
    if name not in PATTERN_NAMES:
        raise CadenzaError(f"unknown codebook pattern {name!r}; valid: {', '.join(PATTERN_NAMES)}")
    if num_codebooks < 1:
        raise CadenzaError(f"codebook pattern {name}: num_codebooks must be at least 1")
    return CodebookPattern(name, int(num_codebooks))
