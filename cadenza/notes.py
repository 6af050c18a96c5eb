"""A note list: one numpy structured array, the currency between MIDI files, events and models.

Times are in seconds. `channel` is the MIDI channel a note was played on; notes read from a
file carry their part instead (one per track and channel, drums on 9), which is what the
sustain pedal and the drum filter need. Arrays rather than objects so that a whole piece is encoded,
transposed or stretched in a few vectorised operations.
"""

from __future__ import annotations

import numpy as np

NOTE_DTYPE = np.dtype(
    [("start", "f8"), ("end", "f8"), ("pitch", "i2"), ("velocity", "i2"), ("channel", "i1")]
)
DRUM_CHANNEL = 9  # channel 10 in the 1-based numbering musicians use


def make_notes(
    start: np.typing.ArrayLike,
    end: np.typing.ArrayLike,
    pitch: np.typing.ArrayLike,
    velocity: np.typing.ArrayLike,
    channel: np.typing.ArrayLike = 0,
) -> np.ndarray:
    """Build a note array sorted by (start, pitch) from parallel columns."""
    start = np.atleast_1d(np.asarray(start, dtype="f8"))
    notes = np.zeros(len(start), dtype=NOTE_DTYPE)
    notes["start"] = start
    notes["end"] = end
    notes["pitch"] = pitch
    notes["velocity"] = velocity
    notes["channel"] = channel
    return sort_notes(notes)


def empty_notes() -> np.ndarray:
    return np.zeros(0, dtype=NOTE_DTYPE)


def sort_notes(notes: np.ndarray) -> np.ndarray:
    """Sort by start time, then pitch: the order note_seq's Performance encoder walks notes in.
    Ties (unisons of two parts) go by end time, so that the order never depends on the input."""
    return notes[np.lexsort((notes["end"], notes["pitch"], notes["start"]))]


def transpose(notes: np.ndarray, semitones: int) -> np.ndarray | None:
    """Shift every pitch; None when a note would leave the MIDI range (Magenta skips those)."""
    pitch = notes["pitch"].astype(np.int32) + semitones
    if len(pitch) and (pitch.min() < 0 or pitch.max() > 127):
        return None
    out = notes.copy()
    out["pitch"] = pitch
    return out


def stretch(notes: np.ndarray, factor: float) -> np.ndarray:
    """Scale all times by `factor` (>1 is slower), as Magenta's time-stretch augmentation."""
    out = notes.copy()
    out["start"] *= factor
    out["end"] *= factor
    return out


def end_time(notes: np.ndarray) -> float:
    return float(notes["end"].max()) if len(notes) else 0.0
