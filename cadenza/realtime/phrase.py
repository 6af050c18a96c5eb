"""Phrase detection for call-and-response: collect what the player plays, say when it ended.

Pure logic on (perf_counter seconds, MIDI bytes): the control thread feeds every incoming
channel message and polls. A phrase ends when nothing sounds (no key down, no sustain pedal
down) and the silence since the sound stopped reached a threshold in seconds or in beats, or
at once on an end-of-phrase CC. The finished phrase is the primer of the answer, so it keeps
the pedal: the plugin applies it to the note durations the way the training data had it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cadenza.midi import PEDAL_DTYPE, SUSTAIN_CC
from cadenza.notes import NOTE_DTYPE, sort_notes
from cadenza.realtime.clock import BeatGrid

NOTE_OFF, NOTE_ON, CONTROL_CHANGE = 0x80, 0x90, 0xB0
ALL_SOUND_OFF, ALL_NOTES_OFF = 120, 123
DEFAULT_BPM = 120.0  # MIDI's default tempo, for a silence in beats with no grid to measure it


@dataclass
class Phrase:
    """A finished phrase. Note and pedal times are seconds from `start_time`; the three
    times are absolute perf_counter seconds."""

    notes: np.ndarray  # NOTE_DTYPE, sorted by (start, pitch); pedal not applied
    pedal: np.ndarray  # PEDAL_DTYPE: every CC64 change, the pedal state at the start at time 0
    start_time: float  # the first note-on kept
    end_time: float  # when the sound stopped: the last note-off or pedal release (or the CC)
    detected_at: float  # when the rule fired: end_time + the silence, or the end CC's time

    @property
    def duration(self) -> float:
        return self.end_time - self.start_time


class PhraseDetector:
    """Feed it timestamped messages, poll it; it returns each finished phrase once.

    `channel` is the wire channel 0..15 to listen to (None: all). With `silence_beats` the
    threshold is measured on the grid given to `poll`; without a grid `silence_seconds` is
    used, or the beats at 120 BPM. Memory is bounded: a phrase keeps its last `max_notes`
    notes, and notes that ended more than `max_seconds` before the newest note-off are cut
    from its beginning, so a player who never pauses is primed with recent context.
    """

    def __init__(
        self,
        silence_seconds: float | None = 1.0,
        silence_beats: float | None = None,
        end_cc: int | None = None,
        channel: int | None = None,
        *,
        max_notes: int = 2048,
        max_seconds: float = 120.0,
    ):
        if silence_seconds is None and silence_beats is None and end_cc is None:
            raise ValueError("a phrase needs an end: silence_seconds, silence_beats or end_cc")
        for name, value in (("silence_seconds", silence_seconds), ("silence_beats", silence_beats)):
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")
        if end_cc is not None and not (0 <= end_cc <= 127 and end_cc != SUSTAIN_CC):
            raise ValueError(f"end_cc must be 0..127 and not the sustain pedal, got {end_cc}")
        if channel is not None and not 0 <= channel <= 15:
            raise ValueError(f"channel must be 0..15 (wire numbering), got {channel}")
        self.silence_seconds = silence_seconds
        self.silence_beats = silence_beats
        self.end_cc = end_cc
        self.channel = channel
        self.max_seconds = max_seconds
        # Finished notes in note-off order: (start, end, pitch, velocity, channel).
        self._notes: deque[tuple[float, float, int, int, int]] = deque(maxlen=max_notes)
        self._held: dict[tuple[int, int], tuple[float, int]] = {}  # (channel, pitch) -> on
        self._pedal: deque[tuple[float, int, int]] = deque(maxlen=4 * max_notes)
        self._pedal_value: dict[int, int] = {}  # the foot's state, kept between phrases
        self._start: float | None = None  # first note-on of the open phrase
        self._released = 0.0  # when the sound last stopped
        self._ready: deque[Phrase] = deque(maxlen=4)  # ended by the CC, not yet polled

    # -- input -------------------------------------------------------------------------

    def feed(self, t: float, message: Sequence[int]) -> None:
        """One incoming message; system messages and other channels are ignored."""
        if len(message) < 3 or message[0] >= 0xF0:
            return
        kind, channel = message[0] & 0xF0, message[0] & 0x0F
        if self.channel is not None and channel != self.channel:
            return
        key, value = message[1] & 0x7F, message[2] & 0x7F
        if kind == NOTE_ON and value > 0:
            self._note_on(t, channel, key, value)
        elif kind in (NOTE_ON, NOTE_OFF):
            self._note_off(t, channel, key)
        elif kind == CONTROL_CHANGE:
            if key == SUSTAIN_CC:
                self._pedal_change(t, channel, value)
            elif key == self.end_cc and value >= 64:
                if self._start is not None:
                    # Held keys and a held pedal are cut here; else the sound ended earlier.
                    end = t if self.sounding else self._released
                    self._ready.append(self._finish(end=end, detected_at=t))
            elif key in (ALL_SOUND_OFF, ALL_NOTES_OFF):
                for held_channel, pitch in list(self._held):
                    if held_channel == channel:
                        self._note_off(t, channel, pitch)

    def _note_on(self, t: float, channel: int, pitch: int, velocity: int) -> None:
        if self._start is None:
            self._start = t
            # A pedal pressed before the first note sustains it: record that state at t.
            for pedal_channel, value in self._pedal_value.items():
                if value >= 64:
                    self._pedal.append((t, pedal_channel, value))
        if (channel, pitch) in self._held:  # struck again without a note-off: end the first
            self._note_off(t, channel, pitch)
        self._held[(channel, pitch)] = (t, velocity)

    def _note_off(self, t: float, channel: int, pitch: int) -> None:
        on = self._held.pop((channel, pitch), None)
        if on is None:  # its note-on came before a reset, or on a filtered channel
            return
        self._notes.append((on[0], t, pitch, on[1], channel))
        self._released = max(self._released, t)
        while self._notes and self._notes[0][1] < t - self.max_seconds:
            self._notes.popleft()

    def _pedal_change(self, t: float, channel: int, value: int) -> None:
        before = self._pedal_value.get(channel, 0)
        self._pedal_value[channel] = value
        if self._start is None:
            return
        self._pedal.append((t, channel, value))
        if before >= 64 > value:
            self._released = max(self._released, t)

    # -- state -------------------------------------------------------------------------

    @property
    def playing(self) -> bool:
        """A key is down now: the player is playing (e.g. again, during an answer)."""
        return bool(self._held)

    @property
    def phrase_started_at(self) -> float | None:
        """The first note-on of the phrase being played, None between phrases: a value later
        than an answer's start means the player came in during the answer."""
        return self._start

    @property
    def sounding(self) -> bool:
        """A key or the sustain pedal is down: the phrase cannot end yet."""
        return bool(self._held) or any(v >= 64 for v in self._pedal_value.values())

    def silence_threshold(self, grid: BeatGrid | None) -> float:
        if self.silence_beats is not None and (grid is not None or self.silence_seconds is None):
            seconds_per_beat = grid.seconds_per_beat if grid is not None else 60.0 / DEFAULT_BPM
            return self.silence_beats * seconds_per_beat
        if self.silence_seconds is None:
            return float("inf")  # only the end CC ends a phrase
        return self.silence_seconds

    def poll(self, now: float, grid: BeatGrid | None = None) -> Phrase | None:
        """The phrase that has ended by `now`, once; None while it goes on or nothing came."""
        if self._ready:
            return self._ready.popleft()
        if self._start is None or self.sounding:
            return None
        threshold = self.silence_threshold(grid)
        if now - self._released < threshold:
            return None
        return self._finish(end=self._released, detected_at=self._released + threshold)

    def reset(self) -> None:
        """Forget the phrase so far (panic, mode change). The pedal state is the foot's, kept."""
        self._notes.clear()
        self._held.clear()
        self._pedal.clear()
        self._ready.clear()
        self._start = None
        self._released = 0.0

    # -- output ------------------------------------------------------------------------

    def _finish(self, end: float, detected_at: float) -> Phrase:
        """Close held notes at `end`, build the arrays, start listening for the next phrase."""
        for channel, pitch in list(self._held):
            self._note_off(end, channel, pitch)
        notes = np.array(list(self._notes), dtype=float).reshape(-1, 5)
        start = float(notes[:, 0].min()) if len(notes) else float(self._start or end)
        out = np.zeros(len(notes), dtype=NOTE_DTYPE)
        out["start"] = notes[:, 0] - start
        out["end"] = notes[:, 1] - start
        out["pitch"] = notes[:, 2]
        out["velocity"] = notes[:, 3]
        out["channel"] = notes[:, 4]
        phrase = Phrase(sort_notes(out), self._pedal_array(start), start, end, detected_at)
        self._notes.clear()
        self._pedal.clear()
        self._start = None
        self._released = 0.0
        return phrase

    def _pedal_array(self, start: float) -> np.ndarray:
        # Changes before the kept start (the phrase was cut) collapse to the state at time 0.
        before: dict[int, int] = {}
        after: list[tuple[float, int, int]] = []
        for t, channel, value in self._pedal:
            if t < start:
                before[channel] = value
            else:
                after.append((t - start, channel, value))
        events = [(0.0, c, v) for c, v in before.items() if v >= 64] + after
        pedal = np.zeros(len(events), dtype=PEDAL_DTYPE)
        for i, (t, channel, value) in enumerate(events):
            pedal[i] = (t, channel, value)
        return np.sort(pedal, order="time", kind="stable")
