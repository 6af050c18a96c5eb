"""MusPy's figures of one piece: a number each, averaged over a set of pieces.

Under MusPy's names they are MusPy's (Dong et al. 2020) figures, computed on our note
arrays (times in seconds) and checked against the `muspy` package on real files
(tests/eval/test_muspy_agreement.py). MusPy counts time in steps of a beat: a note's start
and end are rounded to `resolution` steps a beat (24, MusPy's default) of `beat_seconds`
(performance events carry no tempo: 0.5 s, 120 bpm, the tempo music21 writes a score
without one at). Two figures of Cadenza's own carry names of their own: `note_polyphony`
(notes, not pitches, in exact time) and `groove_consistency_16th` (MusPy's groove on a
16th-note grid). A figure that a piece cannot define (the scale of no notes) is NaN, as in
MusPy.
"""

from __future__ import annotations

import math

import numpy as np

from cadenza.notes import DRUM_CHANNEL

DEFAULT_BEAT_SECONDS = 0.5
MUSPY_RESOLUTION = 24  # muspy.DEFAULT_RESOLUTION: time steps a beat
SIXTEENTHS = 4  # steps a beat of groove_consistency_16th
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


def grid_steps(seconds: np.ndarray, beat_seconds: float, resolution: int) -> np.ndarray:
    """Times as whole steps of a grid of `resolution` steps a beat (MusPy's time unit)."""
    return np.round(np.asarray(seconds, np.float64) / beat_seconds * resolution).astype(np.int64)


def covered(start: np.ndarray, end: np.ndarray):
    """The length of the union of the intervals [start, end), in any order (exact; integer
    steps give an integer). No grid is drawn: a piece at a MIDI file's 10,080 ticks a beat
    costs what it costs at 24."""
    order = np.argsort(start, kind="stable")
    start, end = start[order], end[order]
    covered_until = np.maximum.accumulate(end)
    # A gap opens where an interval starts after every earlier one has ended.
    gaps = np.maximum(start[1:] - covered_until[:-1], 0).sum()
    return covered_until[-1] - start[0] - gaps


def polyphony(
    notes: np.ndarray, beat_seconds: float = DEFAULT_BEAT_SECONDS,
    resolution: int = MUSPY_RESOLUTION,
) -> float:
    """MusPy's polyphony: the mean number of pitches sounding, over the grid steps where at
    least one sounds. A pitch held in two voices (or channels) counts once; drums (channel
    10) are left out; a note shorter than half a step may vanish, as in MusPy."""
    pitched = notes[notes["channel"] != DRUM_CHANNEL]
    start = grid_steps(pitched["start"], beat_seconds, resolution)
    end = grid_steps(pitched["end"], beat_seconds, resolution)
    keep = end > start
    start, end, pitch = start[keep], end[keep], pitched["pitch"][keep].astype(np.int64)
    if len(start) == 0:
        return math.nan
    # Each pitch's notes moved to a stretch of time of their own: one union then sums the
    # steps each pitch sounds (a unison counted once), as MusPy's piano roll does.
    span = int(end.max()) + 1
    pitch_steps = covered(start + pitch * span, end + pitch * span)
    return float(pitch_steps / covered(start, end))


def note_polyphony(notes: np.ndarray) -> float:
    """Mean number of notes sounding, over the time when at least one sounds: total note
    time over the time covered by the union of notes (exact, no grid). Unlike MusPy's
    polyphony, a unison of two notes counts twice, so a note left hanging under its own
    repetition raises it: the figure the stacked-drone answers of issue 18 showed in."""
    if len(notes) == 0:
        return math.nan
    start, end = notes["start"], notes["end"]
    union = covered(start, end)
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
    notes: np.ndarray, beat_seconds: float = DEFAULT_BEAT_SECONDS, beats_per_bar: int = 4,
    resolution: int = MUSPY_RESOLUTION,
) -> float:
    """MusPy's groove consistency (Wu & Yang 2020) with a measure of `beats_per_bar` beats
    of `resolution` steps: 1 - the mean Hamming distance between the onset patterns of
    neighbouring bars, over the steps per bar. 1 is the same rhythm bar after bar. The bars
    run to the last note's end (a piece ending on a barline has an empty bar after it, as
    in MusPy), drums included; NaN with fewer than two bars."""
    if len(notes) == 0:
        return math.nan
    per_bar = resolution * beats_per_bar
    steps = grid_steps(notes["start"], beat_seconds, resolution)
    bars = int(grid_steps(notes["end"], beat_seconds, resolution).max()) // per_bar + 1
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
    "note_polyphony",
    "pitch_range",
    "empty_beat_rate",
    "groove_consistency",
    "groove_consistency_16th",
)


def figures(
    notes: np.ndarray, *, beat_seconds: float = DEFAULT_BEAT_SECONDS, length: float | None = None
) -> dict[str, float]:
    """Every figure of one piece, by name (the order of FIGURES)."""
    return {
        "pitch_class_entropy": pitch_class_entropy(notes),
        "scale_consistency": scale_consistency(notes),
        "polyphony": polyphony(notes, beat_seconds),
        "note_polyphony": note_polyphony(notes),
        "pitch_range": float(pitch_range(notes)),
        "empty_beat_rate": empty_beat_rate(notes, beat_seconds, length),
        "groove_consistency": groove_consistency(notes, beat_seconds),
        "groove_consistency_16th": groove_consistency(notes, beat_seconds,
                                                      resolution=SIXTEENTHS),
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
