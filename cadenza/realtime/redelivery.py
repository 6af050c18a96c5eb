"""Messages delivered twice. A JACK client that runs late in a cycle can read a port buffer
its writer has not yet refilled and so receive the previous cycle's events again (seen about
once in a few hundred cycles with a busy Python writer on two cores); a MIDI merger or a
network bridge can repeat a packet. A player cannot: nobody strikes the same key at the same
velocity twice within a millisecond without releasing it, and a repeated controller, pitch
bend or note-off changes nothing. So a channel message that repeats, byte for byte, one that
arrived less than `window` seconds before it is dropped. A repeated note-on would otherwise
stack two voices for one key, one of them never ended.

MIDI clock is not judged here: a stall legitimately delivers several pulses at once; the
clock follower tells a repeated pulse from a held-up one by where it falls on its line.
"""

from __future__ import annotations

from collections import deque

from cadenza.midi_status import SYSTEM

REPEAT_WINDOW = 0.001  # seconds: far below any human repeat, far above one JACK cycle's spread
RECENT_LIMIT = 64  # messages remembered; a flood of repeats inside the window stays bounded


class RedeliveryFilter:
    """Remembers the channel messages of the last `window` seconds of input."""

    def __init__(self, window: float = REPEAT_WINDOW) -> None:
        self.window = window
        self.dropped = 0
        self._recent: deque[tuple[float, bytes]] = deque(maxlen=RECENT_LIMIT)

    def is_repeat(self, t: float, message: bytes) -> bool:
        """True (and counted) when `message`, a well-formed message stamped `t`, repeats a
        channel message of the last `window` seconds."""
        if message[0] >= SYSTEM:
            return False
        recent = self._recent
        while recent and t - recent[0][0] > self.window:
            recent.popleft()
        if any(earlier == message for _, earlier in recent):
            self.dropped += 1
            return True
        recent.append((t, message))
        return False
