"""What the backing loop hears of the player: note-ons and note-offs as they came, taken out
step by step into the model's frames (backing.py).

A note belongs to the frame that closes after it came; a note struck and released within one
step lasts the step (its note-off goes to the next frame), as the model was trained on notes of
the grid. Control thread only.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from cadenza.midi_status import ends_note, starts_note

MAX_PLAYER_NOTES = 1024  # unheard player notes kept (a flood costs no memory)


class PlayerNotes:
    """The player's notes not yet heard by the model, oldest first, at most `capacity`."""

    def __init__(self, capacity: int = MAX_PLAYER_NOTES):
        self._notes: deque[tuple[float, int, bool]] = deque(maxlen=capacity)  # (t, pitch, on)
        self._deferred: list[int] = []  # note-offs moved to the next frame

    def __len__(self) -> int:
        return len(self._notes)

    def add(self, t: float, message: Sequence[int]) -> None:
        """A message the player played at `t`; only note-ons and note-offs are kept."""
        if starts_note(message):
            self._notes.append((t, message[1], True))
        elif ends_note(message):
            self._notes.append((t, message[1], False))

    def clear(self) -> None:
        self._notes.clear()
        self._deferred = []

    def struck_since(self, t: float) -> bool:
        """A note-on came at or after `t` (and is not yet heard)."""
        return any(on and when >= t for when, _, on in self._notes)

    def take(self, boundary: float) -> tuple[list[int], list[int]]:
        """The note-offs and note-ons that came before `boundary` (or were too late for their
        own frame), taken out of the queue: a frame's (offs, ons), each sorted."""
        notes, offs, ons = self._notes, set(self._deferred), set()
        self._deferred = []
        last: dict[int, bool] = {}
        struck: set[int] = set()
        while notes and notes[0][0] < boundary:
            _, pitch, on = notes.popleft()
            last[pitch] = on
            if on:
                struck.add(pitch)
        for pitch, on in last.items():
            if on or pitch in struck:
                ons.add(pitch)
                offs.discard(pitch)
                if not on:
                    self._deferred.append(pitch)
            else:
                offs.add(pitch)
        return sorted(offs), sorted(ons)
