"""Yang & Lerch (2018)'s features of one piece, as their mgeval toolbox computes them.

"On the evaluation of generative models in music" describes a set of pieces by the
distribution of these features over it (see cadenza.eval.distances). Each feature is a
number, a vector or a matrix (numpy arrays throughout). Two departures from mgeval, both
because our pieces are polyphonic performances: the inter-onset interval is taken between
distinct onsets (a four-voice chord is one onset, not three zero intervals), and note
lengths are classed against a bar of `4 * beat_seconds` since events carry no tempo.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from cadenza.eval.metrics import DEFAULT_BEAT_SECONDS, pitch_class_histogram, pitch_range

TRANSITION_SECONDS = 0.05  # pretty_midi's time_thresh: a note "leads to" one starting then
# mgeval's twelve note-length classes, in 96ths of a bar: whole, half, quarter, 8th, 16th,
# dotted half, dotted quarter, dotted 8th, dotted 16th, half, quarter and 8th triplets.
NOTE_LENGTH_CLASSES = np.array([96, 48, 24, 12, 6, 72, 36, 18, 9, 32, 16, 8]) / 96


def pitch_count(notes: np.ndarray, beat_seconds: float = DEFAULT_BEAT_SECONDS) -> np.ndarray:
    """Distinct pitches used."""
    return np.array(float(np.unique(notes["pitch"]).size))


def pitch_class_transition_matrix(
    notes: np.ndarray, beat_seconds: float = DEFAULT_BEAT_SECONDS
) -> np.ndarray:
    """12 x 12: how often a note of class i ends within 50 ms of a note of class j starting
    (pretty_midi's definition), normalised to sum to 1 (mgeval's normalize=2)."""
    matrix = np.zeros((12, 12))
    if len(notes) > 1:
        near = np.abs(np.subtract.outer(notes["end"], notes["start"])) < TRANSITION_SECONDS
        source, target = np.nonzero(near)
        classes = notes["pitch"].astype(np.int64) % 12
        np.add.at(matrix, (classes[source], classes[target]), 1)
    total = matrix.sum()
    return matrix / total if total else matrix


def average_pitch_interval(
    notes: np.ndarray, beat_seconds: float = DEFAULT_BEAT_SECONDS
) -> np.ndarray:
    """Mean absolute interval, in semitones, between notes one after the other (by onset)."""
    pitch = notes["pitch"].astype(np.float64)
    return np.array(float(np.abs(np.diff(pitch)).mean()) if len(pitch) > 1 else 0.0)


def note_count(notes: np.ndarray, beat_seconds: float = DEFAULT_BEAT_SECONDS) -> np.ndarray:
    return np.array(float(len(notes)))


def average_inter_onset_interval(
    notes: np.ndarray, beat_seconds: float = DEFAULT_BEAT_SECONDS
) -> np.ndarray:
    """Mean time in seconds between one distinct onset and the next."""
    onsets = np.unique(notes["start"])
    return np.array(float(np.diff(onsets).mean()) if len(onsets) > 1 else 0.0)


def note_length_classes(notes: np.ndarray, beat_seconds: float) -> np.ndarray:
    """Each note's class in NOTE_LENGTH_CLASSES: the nearest length, as mgeval picks it."""
    lengths = (notes["end"] - notes["start"]) / (4 * beat_seconds)
    return np.abs(lengths[:, None] - NOTE_LENGTH_CLASSES[None, :]).argmin(axis=1)


def note_length_histogram(
    notes: np.ndarray, beat_seconds: float = DEFAULT_BEAT_SECONDS
) -> np.ndarray:
    counts = np.bincount(note_length_classes(notes, beat_seconds), minlength=12)
    return counts / counts.sum() if counts.sum() else counts.astype(np.float64)


def note_length_transition_matrix(
    notes: np.ndarray, beat_seconds: float = DEFAULT_BEAT_SECONDS
) -> np.ndarray:
    """12 x 12: the length class of each note against the next one's, summing to 1."""
    classes = note_length_classes(notes, beat_seconds)
    matrix = np.zeros((12, 12))
    np.add.at(matrix, (classes[:-1], classes[1:]), 1)
    total = matrix.sum()
    return matrix / total if total else matrix


def _pitch_class_histogram(notes: np.ndarray, beat_seconds: float = 0.0) -> np.ndarray:
    return pitch_class_histogram(notes)


def _pitch_range(notes: np.ndarray, beat_seconds: float = 0.0) -> np.ndarray:
    return np.array(float(pitch_range(notes)))


# name -> feature, in the order of Yang & Lerch's table.
FEATURES: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {
    "pitch_count": pitch_count,
    "pitch_class_histogram": _pitch_class_histogram,
    "pitch_class_transition_matrix": pitch_class_transition_matrix,
    "pitch_range": _pitch_range,
    "average_pitch_interval": average_pitch_interval,
    "note_count": note_count,
    "average_inter_onset_interval": average_inter_onset_interval,
    "note_length_histogram": note_length_histogram,
    "note_length_transition_matrix": note_length_transition_matrix,
}


def features(
    notes: np.ndarray, beat_seconds: float = DEFAULT_BEAT_SECONDS
) -> dict[str, np.ndarray]:
    """Every feature of one piece, by name."""
    return {name: feature(notes, beat_seconds) for name, feature in FEATURES.items()}
