"""MusPy-style figures of one piece: a number each, averaged over a set of pieces.

Defined as MusPy defines them (Dong et al. 2020), computed on our note arrays (times in
seconds). The rhythm figures need a beat: performance events carry no tempo, so the caller
gives `beat_seconds` (0.5 s: 120 bpm, the tempo music21 writes a score without one at).
A figure that a piece cannot define (the scale of no notes) is NaN, as in MusPy.
"""

from __future__ import annotations

import math

import numpy as np

DEFAULT_BEAT_SECONDS = 0.5
STEPS_PER_BEAT = 4  # the 16th-note grid of groove consistency
MAJOR = np.array([1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0, 1], bool)  # C major's pitch classes
NATURAL_MINOR = np.array([1, 0, 1, 1, 0, 1, 0, 1, 1, 0, 1, 0], bool)  # C minor
# Every major and natural minor scale, one row per (mode, root): 24 x 12.
SCALES = np.array([np.roll(mode, root) for mode in (MAJOR, NATURAL_MINOR) for root in range(12)])


def pitch_class_histogram(notes: np.ndarray) -> np.ndarray:
    """Notes per pitch class (C = 0), as a distribution; all zeros for no notes."""
    counts = np.bincount(notes["pitch"].astype(np.int64) % 12, minlength=12).astype(np.float64)
    return counts / counts.sum() if counts.sum() else counts


def pitch_class_entropy(notes: np.ndarray) -> float:
    """Shannon entropy (bits) of the pitch-class histogram: 0 for one pitch class, log2(12)
    for all twelve equally often."""
    if len(notes) == 0:
        return math.nan
    p = pitch_class_histogram(notes)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def pitch_classes_used(notes: np.ndarray) -> int:
    return int(np.unique(notes["pitch"] % 12).size)


def scale_consistency(notes: np.ndarray) -> float:
    """The largest share of notes inside one major or natural minor scale."""
    if len(notes) == 0:
        return math.nan
    return float((SCALES @ pitch_class_histogram(notes)).max())


def polyphony(notes: np.ndarray) -> float:
    """Mean number of notes sounding, over the time when at least one sounds: total note
    time over the time covered by the union of notes (exact, no grid)."""
    if len(notes) == 0:
        return math.nan
    order = np.argsort(notes["start"], kind="stable")
    start, end = notes["start"][order], notes["end"][order]
    covered_until = np.maximum.accumulate(end)
    # A gap opens where a note starts after every earlier note has ended.
    gaps = np.maximum(start[1:] - covered_until[:-1], 0).sum()
    union = covered_until[-1] - start[0] - gaps
    return float((end - start).sum() / union) if union > 0 else math.nan


def pitch_range(notes: np.ndarray) -> int:
    """Highest minus lowest pitch, in semitones; 0 for no notes (as MusPy)."""
    return int(notes["pitch"].max() - notes["pitch"].min()) if len(notes) else 0


def empty_beat_rate(
    notes: np.ndarray, beat_seconds: float = DEFAULT_BEAT_SECONDS, length: float | None = None
) -> float:
    """Share of the beats in [0, length) in which no note sounds. `length` defaults to the
    last note's end; give the sample's length so that a silent ending counts."""
    end = float(notes["end"].max()) if len(notes) else 0.0
    length = end if length is None else length
    beats = math.ceil(length / beat_seconds - 1e-9)
    if beats <= 0:
        return math.nan
    sounding = np.zeros(beats + 1, np.int64)  # +1 on the first beat a note touches, -1 after
    first = np.clip(np.floor(notes["start"] / beat_seconds + 1e-9).astype(np.int64), 0, beats)
    last = np.clip(np.ceil(notes["end"] / beat_seconds - 1e-9).astype(np.int64), 0, beats)
    np.add.at(sounding, first, 1)
    np.add.at(sounding, last, -1)
    return float((np.cumsum(sounding)[:beats] == 0).mean())


def groove_consistency(
    notes: np.ndarray, beat_seconds: float = DEFAULT_BEAT_SECONDS, beats_per_bar: int = 4
) -> float:
    """1 - the mean Hamming distance between the onset patterns of neighbouring bars, on a
    16th-note grid, over the grid steps per bar (Wu & Yang 2020, as MusPy). 1 is the same
    rhythm bar after bar; NaN with fewer than two bars."""
    if len(notes) == 0:
        return math.nan
    per_bar = STEPS_PER_BEAT * beats_per_bar
    steps = np.round(notes["start"] / beat_seconds * STEPS_PER_BEAT).astype(np.int64)
    bars = int(steps.max()) // per_bar + 1
    if bars < 2:
        return math.nan
    onsets = np.zeros(bars * per_bar, bool)
    onsets[steps] = True
    patterns = onsets.reshape(bars, per_bar)
    distance = (patterns[1:] != patterns[:-1]).sum(axis=1)
    return float(1 - distance.mean() / per_bar)


FIGURES = (
    "pitch_class_entropy",
    "scale_consistency",
    "polyphony",
    "pitch_range",
    "empty_beat_rate",
    "groove_consistency",
)


def figures(
    notes: np.ndarray, *, beat_seconds: float = DEFAULT_BEAT_SECONDS, length: float | None = None
) -> dict[str, float]:
    """Every MusPy-style figure of one piece, by name (the order of FIGURES)."""
    return {
        "pitch_class_entropy": pitch_class_entropy(notes),
        "scale_consistency": scale_consistency(notes),
        "polyphony": polyphony(notes),
        "pitch_range": float(pitch_range(notes)),
        "empty_beat_rate": empty_beat_rate(notes, beat_seconds, length),
        "groove_consistency": groove_consistency(notes, beat_seconds),
    }


def set_figures(pieces: list[np.ndarray], **kwargs) -> dict[str, tuple[float, float]]:
    """(mean, standard deviation) of each figure over a set of pieces, undefined ones left
    out (a sample with no notes has no scale)."""
    table = [figures(p, **kwargs) for p in pieces]
    out = {}
    for name in FIGURES:
        values = np.array([row[name] for row in table], dtype=np.float64)
        values = values[~np.isnan(values)]
        out[name] = (float(values.mean()), float(values.std())) if len(values) else (
            math.nan, math.nan)
    return out
