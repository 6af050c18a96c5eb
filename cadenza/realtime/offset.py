"""`--offset-ms`: latency compensation. Every generated note is sent that many milliseconds
later (positive) or earlier (negative), so that it sounds on the beat through a synth, an
interface or a DAW track that adds latency of its own.

A backing plans its steps ahead of the grid (backing.py), so its whole grid moves: earlier
works as well as later. An answer can only be delayed: it starts the moment the call's pause
is heard, and nothing is known of it earlier, so a negative offset there is clamped to 0
(`cadenza live` says so when it starts).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from cadenza.realtime.clock import BeatGrid
from cadenza.realtime.config import LiveConfig

Schedule = Callable[[float, Sequence[int]], None]


def offset_seconds(config: LiveConfig) -> float:
    """The offset the mode can honour, in seconds (negative ones in backing mode only)."""
    seconds = config.offset_ms / 1000.0
    return seconds if config.mode == "backing" else max(0.0, seconds)


def clamped_note(config: LiveConfig) -> str | None:
    """The line that says a negative offset was clamped, or None."""
    if config.offset_ms < 0 and offset_seconds(config) == 0:
        return (f"cadenza live: --offset-ms {config.offset_ms:g} clamped to 0: an answer cannot "
                "be sent before it is made (only --mode backing plans ahead)")
    return None


def delayed(schedule: Schedule, seconds: float) -> Schedule:
    """`schedule`, every deadline `seconds` later."""
    if seconds == 0:
        return schedule
    return lambda deadline, message: schedule(deadline + seconds, message)


def shifted(grid: Callable[[], BeatGrid | None], seconds: float
            ) -> Callable[[], BeatGrid | None]:
    """`grid`, its every beat `seconds` later (earlier when negative)."""
    if seconds == 0:
        return grid

    def moved() -> BeatGrid | None:
        current = grid()
        return None if current is None else dataclasses.replace(
            current, origin=current.origin + seconds)

    return moved
