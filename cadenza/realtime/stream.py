"""Performance events as they happen: played MIDI -> events, generated events -> timed MIDI.

The offline codec (cadenza/events.py) works on whole note arrays. Live, the player's notes
must enter a generator's context while they are played, so that at the end of a phrase only
the last time shift is left to feed, and generated events must become note messages with
deadlines one at a time. These two classes are the streaming forms of the same encoding:
same vocabulary, same sustain rule, same first-in first-out note pairing.
"""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass, field

from cadenza.events import PerformanceCodec
from cadenza.midi_status import (
    CONTROL_CHANGE,
    NOTE_OFF,
    NOTE_ON,
    SUSTAIN_PEDAL,
    SWITCH_ON,
    ends_note,
    kind_of,
    starts_note,
)


@dataclass
class LiveEncoder:
    """Turns timestamped note/pedal messages into performance events.

    Time shifts are measured from the previous event, in the codec's 10 ms steps. While the
    sustain pedal is down a released key keeps sounding (its NOTE_OFF waits for the pedal
    or for the same key struck again), as note_seq's apply_sustain_control_changes does;
    at the release, held notes end in the order they began, as the offline encoder orders them.
    """

    codec: PerformanceCodec
    time: float | None = None  # time of the last emitted event, on the steps grid
    velocity_bin: int = 0
    pedal_down: bool = False
    keys: dict[int, deque] = field(default_factory=lambda: defaultdict(deque))  # key-down starts
    held: list[tuple[float, int]] = field(default_factory=list)  # (start, pitch) under the pedal

    def reset(self) -> None:
        self.time, self.velocity_bin, self.pedal_down = None, 0, False
        self.keys.clear()
        self.held.clear()

    def advance(self, t: float) -> list[int]:
        """TIME_SHIFT events that bring the event clock up to `t` (to the step)."""
        if self.time is None:
            self.time = t
            return []
        steps = int((t - self.time) * self.codec.steps_per_second + 1e-6)  # float slack
        if steps <= 0:
            return []
        self.time += steps / self.codec.steps_per_second
        events = []
        while steps > 0:
            shift = min(steps, self.codec.max_shift_steps)
            events.append(self.codec.time_shift + shift)
            steps -= shift
        return events

    def feed(self, t: float, message: list[int]) -> list[int]:
        """Events for one MIDI message at time `t` (empty for messages that are not notes)."""
        if starts_note(message):
            return self._note_on(t, message[1], message[2])
        if ends_note(message) or (kind_of(message) == NOTE_OFF and len(message) == 2):
            return self._note_off(t, message[1])
        if kind_of(message) == CONTROL_CHANGE and len(message) > 2 and message[1] == SUSTAIN_PEDAL:
            return self._pedal(t, message[2] >= SWITCH_ON)
        return []

    def _note_on(self, t: float, pitch: int, velocity: int) -> list[int]:
        events = self.advance(t)
        for i, (_, held_pitch) in enumerate(self.held):
            if held_pitch == pitch:  # struck again under the pedal: the old one ends now
                del self.held[i]
                events.append(self.codec.note_off + pitch)
                break
        velocity_bin = int(self.codec.velocity_to_bin(velocity))
        if velocity_bin != self.velocity_bin:
            self.velocity_bin = velocity_bin
            events.append(self.codec.velocity + velocity_bin)
        self.keys[pitch].append(t)
        events.append(self.codec.note_on + pitch)
        return events

    def _note_off(self, t: float, pitch: int) -> list[int]:
        if not self.keys[pitch]:
            return []  # an orphan off
        start = self.keys[pitch].popleft()
        if self.pedal_down:
            self.held.append((start, pitch))
            return []
        return [*self.advance(t), self.codec.note_off + pitch]

    def _pedal(self, t: float, down: bool) -> list[int]:
        self.pedal_down = down
        if down or not self.held:
            return []
        events = self.advance(t)
        events.extend(self.codec.note_off + pitch for _, pitch in sorted(self.held))
        self.held.clear()
        return events


@dataclass
class TimedMessage:
    time: float
    message: list[int]


@dataclass
class LiveDecoder:
    """Turns generated events into note messages with absolute times.

    A NOTE_OFF ends the oldest sounding note of its pitch; one without a sounding note is
    ignored, and so is a NOTE_ON beyond `max_polyphony` sounding notes. A note still sounding
    `max_note_seconds` after it began is ended then, so a model that forgets a NOTE_OFF never
    leaves a note hanging.
    """

    codec: PerformanceCodec
    channel: int = 0
    cursor: float = 0.0
    velocity: int = 100
    max_note_seconds: float = 5.0
    max_polyphony: int = 16
    open_notes: dict[int, deque] = field(default_factory=lambda: defaultdict(deque))

    def start(self, t: float) -> None:
        self.cursor = t
        self.open_notes.clear()

    def shift(self, seconds: float) -> None:
        """Move what was decoded from time 0 to start at `seconds` (an answer's opening,
        made before its start was known)."""
        self.cursor += seconds
        for starts in self.open_notes.values():
            for k in range(len(starts)):
                starts[k] += seconds

    def feed(self, event: int) -> list[TimedMessage]:
        codec, out = self.codec, []
        if event < codec.note_off:
            if sum(len(starts) for starts in self.open_notes.values()) >= self.max_polyphony:
                return out  # a hand has only so many fingers; a synth only so many voices
            self.open_notes[event].append(self.cursor)
            out.append(TimedMessage(self.cursor, [NOTE_ON | self.channel, event, self.velocity]))
        elif event <= codec.time_shift:
            pitch = event - codec.note_off
            if self.open_notes[pitch]:
                self.open_notes[pitch].popleft()
                out.append(TimedMessage(self.cursor, [NOTE_OFF | self.channel, pitch, 0]))
        elif event <= codec.velocity:
            self.cursor += (event - codec.time_shift) / codec.steps_per_second
            out.extend(self._expire())
        else:
            self.velocity = int(codec.bin_to_velocity(event - codec.velocity))
        return out

    def _expire(self) -> list[TimedMessage]:
        out = []
        for pitch, starts in self.open_notes.items():
            while starts and self.cursor - starts[0] >= self.max_note_seconds:
                ended = starts.popleft() + self.max_note_seconds
                out.append(TimedMessage(ended, [NOTE_OFF | self.channel, pitch, 0]))
        return out

    def close(self) -> list[TimedMessage]:
        """Note-offs, at the cursor, for every note still open (the end of an answer)."""
        out = [TimedMessage(self.cursor, [NOTE_OFF | self.channel, pitch, 0])
               for pitch, starts in self.open_notes.items() for _ in starts]
        self.open_notes.clear()
        return out
