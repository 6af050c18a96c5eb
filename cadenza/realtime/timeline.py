"""Where the beat is for the live engine: a DAW's MIDI clock, an Ableton Link session or the
internal tempo; and the MIDI clock the engine sends to whoever follows it.

Read and fed on the control thread only (the clock follower is not thread-safe).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Protocol

from cadenza.midi_status import CLOCK, STOP
from cadenza.realtime.clock import BeatGrid, ClockFollower, ClockSender
from cadenza.realtime.config import LiveConfig
from cadenza.realtime.link import LinkFollower

CLOCK_AHEAD = 0.25  # seconds of MIDI clock pulses kept scheduled
START_DELAY = 0.05  # seconds from start() to beat 0 of the internal grid
STOP_SETTLE = 0.005  # seconds for the scheduler to send the clock's Stop before it stops


class Schedule(Protocol):
    """Where the clock's messages go: the engine's Scheduler."""

    def schedule(self, deadline: float, message: list[int]) -> None: ...


class Timeline:
    """The beat grid the engine plays on, and the clock it sends.

    `clock_pulses`: how many pulses of a DAW's clock make a tempo (a backing, which plays on
    the grid from its first notes, waits for a beat of them)."""

    def __init__(self, config: LiveConfig, *, clock_pulses: int):
        self.beats_per_bar = config.beats_per_bar
        self.bpm = config.bpm
        self.clock = ClockFollower(min_pulses=clock_pulses) if config.follow_clock else None
        self.link = LinkFollower(config.bpm, config.beats_per_bar) if config.link else None
        self.grid = BeatGrid(config.bpm, time.perf_counter(), config.beats_per_bar)
        self.sender = ClockSender(self.grid) if config.send_clock else None
        self._pulses: Iterator[float] = iter(())
        self._next_pulse = float("inf")

    @property
    def following_clock(self) -> bool:
        return self.clock is not None

    def start(self, output: Schedule) -> None:
        """The internal grid starts now (a backing's first step is its beat 0), and so does the
        clock we send: Start just before the next beat, then the pulses."""
        self.grid = BeatGrid(self.bpm, time.perf_counter() + START_DELAY, self.beats_per_bar)
        if self.sender is None:
            return
        self.sender.grid = self.grid
        first = self.grid.next_beat(time.perf_counter() + 0.05)
        for message in self.sender.start_messages():
            output.schedule(first - 0.001, message)
        self._pulses = self.sender.deadlines(first)
        self._next_pulse = next(self._pulses)

    def send_clock(self, now: float, output: Schedule) -> None:
        """Keep the next pulses of our MIDI clock scheduled (nothing when we send none)."""
        while self._next_pulse < now + CLOCK_AHEAD:
            output.schedule(self._next_pulse, [CLOCK])
            self._next_pulse = next(self._pulses)

    def stop(self, output: Schedule) -> None:
        """Our clock's followers stop (sent now, before the scheduler stops); Link is left."""
        if self.sender is not None:
            output.schedule(time.perf_counter(), [STOP])
            time.sleep(STOP_SETTLE)
        if self.link is not None:
            self.link.close()

    def feed(self, t: float, message: list[int]) -> bool:
        """A system message of the input; True when a followed clock took it."""
        if self.clock is None:
            return False
        self.clock.feed(t, message)
        return True

    def current(self) -> BeatGrid:
        """The grid now: Link's, else the DAW's clock's while it runs, else the internal one."""
        if self.link is not None:
            return self.link.grid()
        if self.clock is not None:
            grid = self.clock.grid(self.beats_per_bar)
            if grid is not None:
                return grid
        return self.grid

    def transport_grid(self) -> BeatGrid | None:
        """The grid to play a backing on: a followed DAW's, None while it is stopped (nothing
        plays until its Start); else the current one."""
        if self.clock is not None:
            return self.clock.grid(self.beats_per_bar)
        return self.current()

    def beat_position(self, t: float) -> float:
        """The followed DAW's song position at `t`, in beats (0 when no clock is followed)."""
        return 0.0 if self.clock is None else self.clock.beat_position(t)

    @property
    def clock_running(self) -> bool:
        return self.clock is not None and self.clock.running
