"""Phrase detection for call-and-response: collect what the player plays, say when it ended.

Pure logic on (perf_counter seconds, MIDI bytes): the control thread feeds every incoming
channel message and polls. A phrase ends when nothing sounds (no key down, no sustain pedal
down) and the silence since the sound stopped reached a threshold in seconds or in beats, or
at once on an end-of-phrase CC. It detects, and only that: the answer's primer is the player's
notes as the performer's LiveEncoder took them in while they were played; a finished phrase
says when it began, ended and was detected (its length is the "same-as-call" answer's).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from cadenza.midi_status import (
    ALL_NOTES_OFF,
    ALL_SOUND_OFF,
    CONTROL_CHANGE,
    SUSTAIN_PEDAL,
    SWITCH_ON,
    channel_of,
    ends_note,
    kind_of,
    starts_note,
)
from cadenza.realtime.clock import BeatGrid

DEFAULT_BPM = 120.0  # MIDI's default tempo, for a silence in beats with no grid to measure it


@dataclass
class Phrase:
    """A finished phrase; the three times are absolute perf_counter seconds."""

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
    used, or the beats at 120 BPM. Memory is bounded: a phrase is as long as its last
    `max_notes` notes, and notes that ended more than `max_seconds` before the newest note-off
    are cut from its beginning, so a player who never pauses gets an answer of recent length.
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
        if end_cc is not None and not (0 <= end_cc <= 127 and end_cc != SUSTAIN_PEDAL):
            raise ValueError(f"end_cc must be 0..127 and not the sustain pedal, got {end_cc}")
        if channel is not None and not 0 <= channel <= 15:
            raise ValueError(f"channel must be 0..15 (wire numbering), got {channel}")
        self.silence_seconds = silence_seconds
        self.silence_beats = silence_beats
        self.end_cc = end_cc
        self.channel = channel
        self.max_seconds = max_seconds
        # Finished notes in note-off order, (start, end): where the kept phrase begins.
        self._notes: deque[tuple[float, float]] = deque(maxlen=max_notes)
        self._held: dict[tuple[int, int], float] = {}  # (channel, pitch) -> its note-on time
        self._pedal_value: dict[int, int] = {}  # the foot's state, kept between phrases
        self._start: float | None = None  # first note-on of the open phrase
        self._released = 0.0  # when the sound last stopped
        self._ready: deque[Phrase] = deque(maxlen=4)  # ended by the CC, not yet polled

    # -- input -------------------------------------------------------------------------

    def feed(self, t: float, message: Sequence[int]) -> None:
        """One incoming message; system messages and other channels are ignored."""
        channel = channel_of(message)
        if len(message) < 3 or channel is None:
            return
        if self.channel is not None and channel != self.channel:
            return
        key, value = message[1] & 0x7F, message[2] & 0x7F
        if starts_note(message):
            self._note_on(t, channel, key)
        elif ends_note(message):
            self._note_off(t, channel, key)
        elif kind_of(message) == CONTROL_CHANGE:
            if key == SUSTAIN_PEDAL:
                self._pedal_change(t, channel, value)
            elif key == self.end_cc and value >= SWITCH_ON:
                if self._start is not None:
                    # Held keys and a held pedal are cut here; else the sound ended earlier.
                    end = t if self.sounding else self._released
                    self._ready.append(self._finish(end=end, detected_at=t))
            elif key in (ALL_SOUND_OFF, ALL_NOTES_OFF):
                for held_channel, pitch in list(self._held):
                    if held_channel == channel:
                        self._note_off(t, channel, pitch)

    def _note_on(self, t: float, channel: int, pitch: int) -> None:
        if self._start is None:
            self._start = t
        if (channel, pitch) in self._held:  # struck again without a note-off: end the first
            self._note_off(t, channel, pitch)
        self._held[(channel, pitch)] = t

    def _note_off(self, t: float, channel: int, pitch: int) -> None:
        on = self._held.pop((channel, pitch), None)
        if on is None:  # its note-on came before a reset, or on a filtered channel
            return
        self._notes.append((on, t))
        self._released = max(self._released, t)
        while self._notes and self._notes[0][1] < t - self.max_seconds:
            self._notes.popleft()

    def _pedal_change(self, t: float, channel: int, value: int) -> None:
        before = self._pedal_value.get(channel, 0)
        self._pedal_value[channel] = value
        if self._start is not None and before >= SWITCH_ON > value:
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
        return bool(self._held) or any(v >= SWITCH_ON for v in self._pedal_value.values())

    def silence_threshold(self, grid: BeatGrid | None) -> float:
        if self.silence_beats is not None and (grid is not None or self.silence_seconds is None):
            seconds_per_beat = grid.seconds_per_beat if grid is not None else 60.0 / DEFAULT_BPM
            return self.silence_beats * seconds_per_beat
        if self.silence_seconds is None:
            return float("inf")  # only the end CC ends a phrase
        return self.silence_seconds

    def silence_ends_at(self, grid: BeatGrid | None = None) -> float | None:
        """When the silence going on now ends the phrase (inf: only the end CC will); None
        while a key or the pedal is down, or before a phrase began."""
        if self._start is None or self.sounding or self._ready:
            return None
        return self._released + self.silence_threshold(grid)

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
        self._ready.clear()
        self._start = None
        self._released = 0.0

    # -- output ------------------------------------------------------------------------

    def _finish(self, end: float, detected_at: float) -> Phrase:
        """Close held notes at `end`, say when the phrase was, listen for the next one."""
        for channel, pitch in list(self._held):
            self._note_off(end, channel, pitch)
        starts = [start for start, _ in self._notes]
        start = min(starts) if starts else float(self._start or end)
        self._notes.clear()
        self._start = None
        self._released = 0.0
        return Phrase(start, end, detected_at)
