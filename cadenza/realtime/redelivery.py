"""Messages delivered twice. A JACK client that runs late in a cycle can read a port buffer
its writer has not yet refilled and so receive the previous cycle's events again (seen about
once in a few hundred cycles with a busy Python writer on two cores); a MIDI merger or a
network bridge can repeat a packet. A player cannot: nobody strikes the same key at the same
velocity twice within a millisecond without releasing it, and a repeated controller, pitch
bend or note-off changes nothing. So a channel message that repeats, byte for byte, the last
message of its key (or controller, or the channel's bend...) of the last `window` seconds is
dropped. A repeated note-on would otherwise stack two voices for one key, one of them never
ended.

The last of its key, not any: a stalled writer delivers a fast repeated note all at once
(note-off, note-on, note-off of one key within a cycle), and its second note-off, equal to
the first, ends the key struck between them: dropped, the key stays down for good (the
phrase never ends, a passed-through note never stops). A cycle delivered again whose
note-off and note-on are of one key is therefore played twice; the key ends as it was.

MIDI clock is not judged here: a stall legitimately delivers several pulses at once; the
clock follower tells a repeated pulse from a held-up one by where it falls on its line.
"""

from __future__ import annotations

from collections import deque

from cadenza.midi_status import CONTROL_CHANGE, NOTE_OFF, NOTE_ON, POLY_PRESSURE, SYSTEM, kind_of

REPEAT_WINDOW = 0.001  # seconds: far below any human repeat, far above one JACK cycle's spread
RECENT_LIMIT = 64  # messages remembered; a flood of repeats inside the window stays bounded


class RedeliveryFilter:
    """Remembers the channel messages of the last `window` seconds of input."""

    def __init__(self, window: float = REPEAT_WINDOW) -> None:
        self.window = window
        self.dropped = 0
        # (time, the state it set, message), oldest first
        self._recent: deque[tuple[float, tuple[int, ...], bytes]] = deque(maxlen=RECENT_LIMIT)

    def is_repeat(self, t: float, message: bytes) -> bool:
        """True (and counted) when `message`, a well-formed message stamped `t`, repeats
        the last channel message of the last `window` seconds that set the same state."""
        if message[0] >= SYSTEM:
            return False
        recent = self._recent
        while recent and t - recent[0][0] > self.window:
            recent.popleft()
        sets = what_it_sets(message)
        last = next((earlier for _, same, earlier in reversed(recent) if same == sets), None)
        if last == message:  # it sets what is already set: a repeat, changing nothing
            self.dropped += 1
            return True
        recent.append((t, sets, message))
        return False


def what_it_sets(message: bytes) -> tuple[int, ...]:
    """The state a channel message sets: a key's (note-on and note-off alike), a
    controller's or key pressure's, or its channel's (program, pressure, bend)."""
    kind = kind_of(message)
    if kind in (NOTE_ON, NOTE_OFF):
        return (NOTE_ON | (message[0] & 0x0F), message[1])
    if kind in (POLY_PRESSURE, CONTROL_CHANGE):
        return (message[0], message[1])
    return (message[0],)
