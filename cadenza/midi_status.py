"""MIDI status bytes and the few facts about them that every module needs: one place.

A channel message is a status byte 0x80-0xEF (its high nibble the kind, its low nibble the
channel) and one or two data bytes 0-127; system messages are 0xF0 and up.
"""

from __future__ import annotations

from collections.abc import Sequence

# Channel messages: the high nibble of the status byte.
NOTE_OFF = 0x80
NOTE_ON = 0x90
POLY_PRESSURE = 0xA0
CONTROL_CHANGE = 0xB0
PROGRAM_CHANGE = 0xC0
CHANNEL_PRESSURE = 0xD0
PITCH_BEND = 0xE0

# System messages.
SYSTEM = 0xF0
SYSEX = 0xF0
SONG_POSITION = 0xF2
CLOCK = 0xF8
START = 0xFA
CONTINUE = 0xFB
STOP = 0xFC

# Controllers Cadenza sends or reads.
SUSTAIN_PEDAL = 64
ALL_SOUND_OFF = 120
RESET_CONTROLLERS = 121
ALL_NOTES_OFF = 123
SWITCH_ON = 64  # a switch controller (the pedal, a button) is on from this value up

DRUM_CHANNEL = 9  # channel 10, counted from 0: General MIDI's percussion


def is_channel_message(message: Sequence[int]) -> bool:
    """A status byte of a channel message (note, controller, program...) and a data byte."""
    return len(message) >= 2 and NOTE_OFF <= message[0] < SYSTEM


def kind_of(message: Sequence[int]) -> int:
    """The kind of a channel message (NOTE_ON, CONTROL_CHANGE...), its channel masked off."""
    return message[0] & 0xF0


def channel_of(message: Sequence[int]) -> int | None:
    """The channel (0-15) of a channel message; None for a system message."""
    return message[0] & 0x0F if is_channel_message(message) else None


def starts_note(message: Sequence[int]) -> bool:
    """A note-on with a velocity above 0 (a note-on at velocity 0 ends its note)."""
    return len(message) >= 3 and kind_of(message) == NOTE_ON and message[2] > 0


def ends_note(message: Sequence[int]) -> bool:
    """A note-off, or a note-on at velocity 0."""
    return len(message) >= 3 and (
        kind_of(message) == NOTE_OFF or (kind_of(message) == NOTE_ON and message[2] == 0)
    )


# Data bytes each status takes (a channel message by its kind); None: any number (SysEx);
# a status not here is undefined (0xF4, 0xF5, 0xF9, 0xFD) or a lone end of SysEx (0xF7).
_DATA_BYTES: dict[int, int | None] = {
    NOTE_OFF: 2, NOTE_ON: 2, POLY_PRESSURE: 2, CONTROL_CHANGE: 2, PITCH_BEND: 2,
    PROGRAM_CHANGE: 1, CHANNEL_PRESSURE: 1,
    SYSEX: None,
    0xF1: 1,  # MIDI time code quarter frame
    SONG_POSITION: 2,
    0xF3: 1,  # song select
    0xF6: 0,  # tune request
    CLOCK: 0, START: 0, CONTINUE: 0, STOP: 0,
    0xFE: 0,  # active sensing
    0xFF: 0,  # system reset
}
END_OF_SYSEX = 0xF7


def well_formed(message: Sequence[int]) -> bool:
    """One complete MIDI message, as the live engine reads input (the one check at that
    trust boundary): a status byte, then exactly the data bytes its kind takes, each 0-127;
    a SysEx whole, from 0xF0 to 0xF7. Anything else (empty, a lone data byte, a truncated
    note, a velocity of 200, an undefined status, two messages run together) is not."""
    if not message:
        return False
    status = message[0]
    if not 0x80 <= status <= 0xFF:
        return False  # a data byte first: running status, or a fragment
    wanted = _DATA_BYTES.get(status & 0xF0 if status < SYSTEM else status, -1)
    if wanted == -1:
        return False
    if wanted is None:  # SysEx: F0, data bytes, F7
        return (len(message) >= 2 and message[-1] == END_OF_SYSEX
                and all(0 <= byte < 0x80 for byte in message[1:-1]))
    return len(message) == 1 + wanted and all(0 <= byte < 0x80 for byte in message[1:])
