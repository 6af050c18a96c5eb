"""The notes sounding in a generated event stream, and which events may come next.

Sampling an event model freely lets it write events no performance has: a NOTE_ON of a pitch
already sounding (the decoders' FIFO then ends only the older one when the NOTE_OFF comes,
and the other hangs on until the 5 s cap: the drones of issue 18), a NOTE_OFF of a pitch not
sounding (ignored by the decoders, so the note the model meant to end goes on). The shipped
models wrote both (docs/EVAL.md, "Where the extra voices came from"). `Voices` follows the
events a generator takes (the primer, a player's notes, its own) and masks the logits before
each sample, so that those events are never drawn, and so that no NOTE_ON is drawn while
`max_voices` notes sound (0: no limit).

Until the stream's first NOTE_ON, NOTE_OFFs of silent pitches are let through: the models
learnt on windows cut from the middle of pieces, which open with the NOTE_OFFs of notes
begun before them, so from nothing a model first ends the notes it imagines sounding. They
are no-ops for the decoders; masked, the model goes on believing in those notes and plays
thin (polyphony 2.1 from scratch against 4.0 after a primer, measured as in docs/EVAL.md).
Masking a note held too long into a NOTE_OFF was tried and left out: a cap on time shifts
pushed their probability onto note events, and the models answered with bursts of chords.

A unison of two voices on one channel is one sound (a second NOTE_ON of a sounding pitch
restrikes it on a synth, and the first NOTE_OFF ends both), so a sounding pitch is not
started again even though the chorales double a pitch now and then.

Monophonic (max_voices 1) is the same rule with N = 1: the model ends its note before it
starts the next, and every note lasts exactly as long as the model held it. A new note does
not cut the sounding one (a mono synth's last-note priority): one step yields one event, so a
cut would be a NOTE_OFF the model never chose, and since the models write a chord's notes at
one instant from the bottom up, cutting would leave blips of zero length under the top note.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cadenza.events import NUM_PITCHES, PerformanceCodec

MAX_VOICES = NUM_PITCHES  # the most notes that can sound at once on one channel


@dataclass(frozen=True)
class VoicesState:
    """What `Voices.state` returns: a generator's snapshot carries it."""

    counts: np.ndarray
    begun: bool


class Voices:
    """The sounding notes of one event stream: how many of each pitch."""

    def __init__(self, codec: PerformanceCodec):
        self.codec = codec
        self.counts = np.zeros(NUM_PITCHES, dtype=np.int32)
        self.begun = False  # a NOTE_ON has been taken since the start

    @property
    def sounding(self) -> int:
        """How many notes sound now."""
        return int(self.counts.sum())

    def pitches(self) -> list[int]:
        return [int(p) for p in np.flatnonzero(self.counts)]

    def reset(self) -> None:
        self.counts.fill(0)
        self.begun = False

    def restart(self, events: object) -> None:
        """Forget, then take `events` (a prime's context)."""
        self.reset()
        self.take(events)

    def take(self, events: object) -> None:
        """Events into the stream, as a decoder reads them (a NOTE_OFF of nothing sounding
        is ignored). A pitch a primer doubles counts twice: both NOTE_OFFs may come."""
        codec = self.codec
        for event in np.asarray(events, dtype=np.int64).reshape(-1):
            if event < codec.note_off:
                self.counts[event] += 1
                self.begun = True
            elif event <= codec.time_shift and self.counts[event - codec.note_off]:
                self.counts[event - codec.note_off] -= 1

    def mask(self, logits: np.ndarray, max_voices: int = 0) -> np.ndarray:
        """`logits` with every event that may not come next at -inf (a copy)."""
        codec = self.codec
        out = np.array(logits, dtype=np.float64)
        playing = self.counts > 0
        if self.begun:
            out[codec.note_off : codec.note_off + NUM_PITCHES][~playing] = -np.inf
        ons = out[codec.note_on : codec.note_on + NUM_PITCHES]
        if 0 < max_voices <= self.sounding:
            ons[:] = -np.inf
        else:
            ons[playing] = -np.inf
        return out

    def state(self) -> VoicesState:
        return VoicesState(self.counts.copy(), self.begun)

    def restore(self, state: VoicesState) -> None:
        self.counts[...] = state.counts
        self.begun = state.begun


def keep_highest(notes: np.ndarray, max_voices: int) -> np.ndarray:
    """The `max_voices` highest of one step's notes (a bool per pitch, low to high; 0: all).
    A piano roll has no order in which its notes were chosen, so the roll-level limit (the
    vae's) thins from below: the top line, which a listener follows as the tune, stays whole,
    and a monophonic roll is its top voice rather than one that jumps between voices."""
    if max_voices <= 0 or int(notes.sum()) <= max_voices:
        return notes
    kept = notes.copy()
    kept[np.flatnonzero(notes)[:-max_voices]] = False
    return kept
