"""What a MIDI output is sounding, from the messages sent to it: the notes (counted), the
sustain pedals down and the channels used. The scheduler keeps one, so that stop, panic and
cancel end exactly what sounds."""

from __future__ import annotations

from collections.abc import Sequence

from cadenza.midi_status import (
    ALL_NOTES_OFF,
    ALL_SOUND_OFF,
    CONTROL_CHANGE,
    SUSTAIN_PEDAL,
    SWITCH_ON,
    channel_of,
    ends_note,
    is_channel_message,
    kind_of,
    starts_note,
)


class NoteState:
    """Sounding notes (channel, pitch) -> count, sustain pedals down, channels used.

    A count, not a set: the decoder may overlap two notes of one pitch, and a synth that
    counts voices needs a note-off for each.
    """

    def __init__(self) -> None:
        self.notes: dict[tuple[int, int], int] = {}
        self.pedals: set[int] = set()
        self.channels: set[int] = set()

    def copy(self) -> NoteState:
        other = NoteState()
        other.notes, other.pedals, other.channels = dict(self.notes), set(self.pedals), set()
        return other

    @staticmethod
    def is_an_end(message: Sequence[int]) -> bool:
        """A note-off or a sustain-off: a message that ends what another began."""
        if len(message) < 3 or not is_channel_message(message):
            return False
        return ends_note(message) or (kind_of(message) == CONTROL_CHANGE
                                      and message[1] == SUSTAIN_PEDAL and message[2] < SWITCH_ON)

    def ends_something(self, message: Sequence[int]) -> bool:
        """Would this message end a sounding note or lift a pedal that is down?"""
        if len(message) < 3 or not is_channel_message(message):
            return False
        kind, channel = kind_of(message), channel_of(message)
        if ends_note(message):
            return (channel, message[1]) in self.notes
        if kind == CONTROL_CHANGE and message[1] == SUSTAIN_PEDAL and message[2] < SWITCH_ON:
            return channel in self.pedals
        return False

    def apply(self, message: Sequence[int]) -> None:
        if not is_channel_message(message):
            return
        kind, channel = kind_of(message), message[0] & 0x0F
        self.channels.add(channel)
        if len(message) < 3:
            return
        key = (channel, message[1])
        if starts_note(message):
            self.notes[key] = self.notes.get(key, 0) + 1
        elif ends_note(message):
            count = self.notes.get(key, 0) - 1
            if count > 0:
                self.notes[key] = count
            else:
                self.notes.pop(key, None)
        elif kind == CONTROL_CHANGE:
            if message[1] == SUSTAIN_PEDAL:
                (self.pedals.add if message[2] >= SWITCH_ON else self.pedals.discard)(channel)
            elif message[1] in (ALL_SOUND_OFF, ALL_NOTES_OFF):
                for note in [k for k in self.notes if k[0] == channel]:
                    del self.notes[note]
