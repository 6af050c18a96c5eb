"""Monophonic melodies on a 16th-note grid: Magenta's Melody RNN encodings, in numpy.

A melody is one event a grid step (4 steps a quarter), as note_seq's `Melody`: NO_EVENT (-2,
the note before goes on, or silence goes on), NOTE_OFF (-1) or a MIDI pitch (a note starts,
ending the one before). `MelodyOneHotEncoding(48, 84)` numbers them as classes: 0 NO_EVENT,
1 NOTE_OFF, 2.. the pitches 48..83 (38 classes); `squash` moves a melody into that range
(to C major and by octaves, as `Melody.squash` does) and says by how much, so that an answer
can be moved back to the player's key.

What a model step reads (`inputs`) and predicts (`labels`), per variant:
- basic (Magenta's basic_rnn): the one-hot of the event; predicts the next event's class.
- lookback (lookback_rnn, `LookbackEventSequenceEncoderDecoder`): the one-hot of the event,
  the one-hots of the events 1 and 2 bars (16 and 32 steps) before the next one, a 5-bit
  binary counter (+1/-1) of the next step's position, and flags "the event repeats the one
  1 bar / 2 bars ago"; predicts the 38 classes plus 2 labels "repeat the event 1 / 2 bars
  ago" (decoded against the melody's own history).
- attention: the basic one-hot plus the binary counter. Deviation: Magenta's attention_rnn
  reads the KeyMelody encoding (lookback plus key features); here the attention over the
  last 40 outputs is what stands for the lookback, so the two variants compare cleanly.

Bars are Magenta's fixed 16 steps (4/4 at 4 steps a quarter) whatever a tune's meter, as
the lookback encoder's default distances are; a melody starts on a bar line of its tune, so
step i of it is at position `first_position + i` of the bar grid. Numpy only: the runtime
plugin computes its inputs with this module, the trainer its batches.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cadenza.pianoroll import GRID_NOTE_DTYPE

NO_EVENT, NOTE_OFF = -2, -1  # note_seq's MELODY_NO_EVENT, MELODY_NOTE_OFF
NUM_SPECIAL = 2
MIN_PITCH, MAX_PITCH = 48, 84  # MelodyRnnConfig's min_note, max_note (exclusive)
STEPS_PER_QUARTER = 4
STEPS_PER_BAR = 16
LOOKBACK = (STEPS_PER_BAR, 2 * STEPS_PER_BAR)
COUNTER_BITS = 5
ATTENTION_LENGTH = 40  # attention_rnn's attn_length
VARIANTS = ("basic", "lookback", "attention")
MAJOR_SCALE = np.array([0, 2, 4, 5, 7, 9, 11])


@dataclass(frozen=True)
class MelodyEncoding:
    """The class layout and the grid; `to_dict` is a corpus's and a bundle's representation."""

    min_pitch: int = MIN_PITCH
    max_pitch: int = MAX_PITCH
    steps_per_quarter: int = STEPS_PER_QUARTER
    steps_per_bar: int = STEPS_PER_BAR

    @property
    def num_classes(self) -> int:
        return self.max_pitch - self.min_pitch + NUM_SPECIAL

    @property
    def lookback(self) -> tuple[int, int]:
        return (self.steps_per_bar, 2 * self.steps_per_bar)

    def to_dict(self) -> dict:
        return {"kind": "melody", "min_pitch": self.min_pitch, "max_pitch": self.max_pitch,
                "steps_per_quarter": self.steps_per_quarter, "steps_per_bar": self.steps_per_bar}

    @classmethod
    def from_dict(cls, data: dict) -> MelodyEncoding:
        return cls(int(data["min_pitch"]), int(data["max_pitch"]),
                   int(data["steps_per_quarter"]), int(data["steps_per_bar"]))

    # --- events <-> classes ----------------------------------------------------------------
    def to_classes(self, events: np.ndarray) -> np.ndarray:
        """Melody events (inside the range: `squash` first) -> class indices."""
        events = np.asarray(events, np.int64)
        pitch = events >= 0
        if np.any(pitch & ((events < self.min_pitch) | (events >= self.max_pitch))):
            raise ValueError(f"a pitch outside {self.min_pitch}..{self.max_pitch - 1}: "
                             "squash first")
        return np.where(pitch, events - self.min_pitch + NUM_SPECIAL, events + NUM_SPECIAL)

    def to_events(self, classes: np.ndarray) -> np.ndarray:
        classes = np.asarray(classes, np.int64)
        return np.where(classes >= NUM_SPECIAL, classes - NUM_SPECIAL + self.min_pitch,
                        classes - NUM_SPECIAL)

    # --- model inputs and outputs ----------------------------------------------------------
    def input_size(self, variant: str) -> int:
        n = self.num_classes
        return {"basic": n, "lookback": 3 * n + COUNTER_BITS + 2,
                "attention": n + COUNTER_BITS}[variant]

    def output_size(self, variant: str) -> int:
        return self.num_classes + (2 if variant == "lookback" else 0)

    def inputs(self, classes: np.ndarray, variant: str, first_position: int = 0,
               skip: int = 0) -> np.ndarray:
        """(len(classes) - skip, input_size) float32: the input at each position from `skip`
        on (the event there, to predict the next one), earlier ones serving as history."""
        classes = np.asarray(classes, np.int64)
        n, length = self.num_classes, len(classes)
        at = np.arange(skip, length)
        eye = np.eye(n, dtype=np.float32)
        parts = [eye[classes[at]]]
        if variant == "lookback":
            for distance in self.lookback:  # the event `distance` before the next one
                back = at - distance + 1
                parts.append(eye[np.where(back >= 0, classes[np.maximum(back, 0)], 0)])
        if variant in ("lookback", "attention"):
            parts.append(binary_counter(first_position + at + 1))
        if variant == "lookback":
            for distance in self.lookback:  # the event repeats the one `distance` before it
                back = at - distance
                same = (back >= 0) & (classes[np.maximum(back, 0)] == classes[at])
                parts.append(same.astype(np.float32)[:, None])
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r} (known: {', '.join(VARIANTS)})")
        return np.concatenate(parts, axis=1)

    def labels(self, classes: np.ndarray, variant: str, first_position: int = 0,
               skip: int = 1) -> np.ndarray:
        """The label of each position from `skip` on (what the input before it predicts);
        `classes` starts at `first_position` of its melody (earlier ones are history)."""
        classes = np.asarray(classes, np.int64)
        at = np.arange(skip, len(classes))
        label = classes[at].copy()
        if variant != "lookback":
            return label
        n, (one, two) = self.num_classes, self.lookback
        # Magenta's order: NO_EVENT before two bars exist is "repeat 2 bars ago" (which
        # decodes to NO_EVENT there); then a repeat of 1 bar, then of 2 bars ago.
        repeat_two = (at - two >= 0) & (classes[np.maximum(at - two, 0)] == classes[at])
        repeat_one = (at - one >= 0) & (classes[np.maximum(at - one, 0)] == classes[at])
        label = np.where(repeat_two, n + 1, label)
        label = np.where(repeat_one, n, label)
        return np.where((first_position + at < two) & (classes[at] == 0), n + 1, label)

    def decode_label(self, label: int, history: list[int] | np.ndarray) -> int:
        """A sampled label -> the class of the next event, after `history` (the classes so
        far): a lookback label repeats the event one or two bars before it."""
        if label < self.num_classes:
            return int(label)
        back = len(history) - self.lookback[label - self.num_classes]
        return int(history[back]) if back >= 0 else 0


def binary_counter(positions: np.ndarray) -> np.ndarray:
    """(len, COUNTER_BITS) float32: bit i of each position as +1 / -1 (Magenta's counter)."""
    positions = np.asarray(positions, np.int64)[:, None]
    bits = (positions >> np.arange(COUNTER_BITS)[None, :]) & 1
    return np.where(bits == 1, 1.0, -1.0).astype(np.float32)


# --- melodies from notes and back ---------------------------------------------------------
def top_line(notes: np.ndarray, start: int, steps: int) -> np.ndarray:
    """Grid notes -> the melody events of steps [start, start + steps): the highest note
    starting on each step, unless a higher one still sounds (a chord's lower notes, an
    accompaniment under a held note are left out); a note ends where the next one starts or
    where it ends. A piano player's phrase becomes its top line; a tune stays itself."""
    events = np.full(steps, NO_EVENT, np.int64)
    order = np.lexsort((-notes["pitch"].astype(np.int64), notes["start"]))
    end, pitch, seen = -1, -1, None
    for i in order:
        s = int(notes["start"][i]) - start
        if s < 0 or s >= steps or s == seen:
            continue
        seen = s
        p = int(notes["pitch"][i])
        if end > s and pitch > p:
            continue  # under a higher note that still sounds
        if 0 <= end < s:
            events[end] = NOTE_OFF
        events[s] = p
        end, pitch = int(notes["end"][i]) - start, p
    if 0 <= end < steps:
        events[end] = NOTE_OFF
    return events


def melody_notes(events: np.ndarray, offset: int = 0, velocity: int = 80) -> np.ndarray:
    """Melody events -> grid notes (GRID_NOTE_DTYPE); a note left open ends with the melody."""
    rows: list[tuple[int, int, int, int]] = []
    onset, pitch = None, 0
    for t, event in enumerate(np.asarray(events, np.int64).tolist()):
        if event == NO_EVENT:
            continue
        if onset is not None:
            rows.append((onset + offset, t + offset, pitch, velocity))
            onset = None
        if event >= 0:
            onset, pitch = t, event
    if onset is not None:
        rows.append((onset + offset, len(events) + offset, pitch, velocity))
    return np.array(rows, dtype=GRID_NOTE_DTYPE)


def major_key(events: np.ndarray) -> int:
    """The major key (0 = C) whose scale holds most of the melody's notes (note_seq's
    `Melody.get_major_key`; ties to the lowest)."""
    pitches = np.asarray(events)[np.asarray(events) >= 0]
    histogram = np.bincount(pitches % 12, minlength=12)
    fits = [histogram[(key + MAJOR_SCALE) % 12].sum() for key in range(12)]
    return int(np.argmax(fits))


def squash(events: np.ndarray, encoding: MelodyEncoding = MelodyEncoding(),
           key: int | None = 0) -> tuple[np.ndarray, int]:
    """The melody moved to `key` major (None: left in its key), its lowest note into the
    range's lowest octave, and any note still above the range folded down by octaves, as
    `Melody.squash` does; returns it and the transposition (the folds apart)."""
    events = np.asarray(events, np.int64).copy()
    notes = events >= 0
    if not notes.any():
        return events, 0
    shift = 0 if key is None else (key - major_key(events)) % 12
    lowest = int(events[notes].min()) + shift
    shift += 12 * -(-(encoding.min_pitch - lowest) // 12)  # lowest lands in the lowest octave
    pitches = events[notes] + shift
    while np.any(pitches >= encoding.max_pitch):
        pitches = np.where(pitches >= encoding.max_pitch, pitches - 12, pitches)
    events[notes] = np.maximum(pitches, encoding.min_pitch)  # a range under an octave
    return events, shift


def transpose_events(events: np.ndarray, semitones: int) -> np.ndarray:
    """The melody moved by `semitones` (an answer back into the player's key); pitches
    that would leave the MIDI range are moved back by octaves."""
    events = np.asarray(events, np.int64).copy()
    notes = events >= 0
    pitches = events[notes] + semitones
    pitches = np.where(pitches > 127, pitches - 12 * -(-(pitches - 127) // 12), pitches)
    events[notes] = np.where(pitches < 0, pitches % 12, pitches)
    return events
