"""Sampling on the host, so that knobs change between steps without re-exporting a graph."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cadenza.plugins.voices import MAX_VOICES


@dataclass
class Knobs:
    """The live sampling knobs. Plain floats: a control thread may set them at any time and
    the next step reads the new values (attribute assignment is atomic in CPython)."""

    temperature: float = 1.0
    top_k: int = 0  # 0: no limit
    top_p: float = 1.0  # 1.0: no nucleus cut
    max_voices: int = 0  # event plugins: notes sounding at once (1: monophonic, 0: no limit)

    def __post_init__(self) -> None:
        if not 0.0 <= self.temperature <= 10.0:
            raise ValueError(f"temperature must be in 0..10, got {self.temperature}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0, got {self.top_k}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if (not isinstance(self.max_voices, int) or isinstance(self.max_voices, bool)
                or not 0 <= self.max_voices <= MAX_VOICES):
            raise ValueError(f"max_voices must be in 0..{MAX_VOICES} (0: no limit), "
                             f"got {self.max_voices}")


def sample(logits: np.ndarray, knobs: Knobs, rng: np.random.Generator) -> int:
    """Draw one class index from 1-D logits with temperature, top-k and top-p.

    Temperature 0 is greedy (argmax), which is what parity checks and tests rely on.
    """
    if knobs.temperature <= 0.0:
        return int(np.argmax(logits))
    scaled = logits.astype(np.float64) / knobs.temperature
    if 0 < knobs.top_k < scaled.size:
        cutoff = np.partition(scaled, -knobs.top_k)[-knobs.top_k]
        scaled = np.where(scaled >= cutoff, scaled, -np.inf)
    probs = np.exp(scaled - scaled.max())
    probs /= probs.sum()
    if knobs.top_p < 1.0:
        order = np.argsort(-probs)
        cumulative = np.cumsum(probs[order])
        # Keep the smallest set whose mass reaches top_p (always at least the top class).
        keep = order[: int(np.searchsorted(cumulative, knobs.top_p)) + 1]
        nucleus = np.zeros_like(probs)
        nucleus[keep] = probs[keep]
        probs = nucleus / nucleus.sum()
    # Inverse CDF: one uniform draw, cheaper than rng.choice for a single sample.
    index = int(np.searchsorted(np.cumsum(probs), rng.random() * probs.sum(), side="right"))
    return min(index, probs.size - 1)


def guided(conditional: np.ndarray, unconditional: np.ndarray, coefficient: float) -> np.ndarray:
    """Classifier-free guidance (Ho & Salimans 2022), on logits as MusicGen applies it:
    unconditional + coefficient * (conditional - unconditional). 1 is the conditional model,
    0 the unconditional one, above 1 follows the condition more closely than it learnt to."""
    return unconditional + coefficient * (conditional - unconditional)


def sample_rows(logits: np.ndarray, knobs: Knobs, rng: np.random.Generator) -> np.ndarray:
    """One class per row of (rows, classes) logits (a codec LM's K codebooks), int64."""
    return np.array([sample(row, knobs, rng) for row in logits], dtype=np.int64)
