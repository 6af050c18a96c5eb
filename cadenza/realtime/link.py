"""Follow an Ableton Link session: its tempo and beat phase as a BeatGrid on time.perf_counter,
the same grid type as ClockFollower gives for MIDI clock.

The binding is optional (`pip install 'cadenza[link]'`, the LinkPython-extern package, module
`link`): it is imported only when `--link` is asked for, and without it that is a one-line
ConfigError. LinkPython-extern wraps the Link SDK with plain blocking calls, which suits the
engine's threads; the other PyPI binding, aalink, is built around an asyncio loop.

Link's peers share the tempo and the phase of the beat within a `quantum` (here a bar of
`beats_per_bar` beats): each peer's beat numbers are its own, but its bar lines are everyone's.
"""

from __future__ import annotations

import importlib
import math
import time
from types import ModuleType
from typing import Any

from cadenza.errors import ConfigError
from cadenza.realtime.clock import BeatGrid

PACKAGE = "LinkPython-extern"
REFRESH = 0.05  # seconds a captured grid is reused: the control loop asks every millisecond
OFFSET_READS = 5  # bracketed clock reads per offset measurement; the narrowest one counts


def import_link() -> ModuleType:
    """The binding's module, or a ConfigError naming the package to install."""
    try:
        module = importlib.import_module("link")
    except ImportError:
        module = None
    # `link` is a common name: make sure it is the Link SDK's wrapper, not another module.
    if module is None or not hasattr(module, "Link"):
        raise ConfigError(
            "link", f"needs the Ableton Link binding: pip install 'cadenza[link]' (or {PACKAGE})"
        )
    return module


def clock_offset(micros: Any) -> float:
    """perf_counter seconds minus Link clock seconds, `micros` being Link's clock reader.

    On Linux, Link's clock reads CLOCK_MONOTONIC_RAW (measured: within a microsecond of it)
    while perf_counter reads CLOCK_MONOTONIC: two clocks with an offset between them, and NTP
    slews CLOCK_MONOTONIC's rate (up to 500 ppm, 1.8 s an hour at worst). So the offset is
    measured, not assumed, and measured again at every refresh rather than once. A read of
    Link's clock between two perf_counter reads sits in that interval; of a few tries, the
    narrowest interval (a few microseconds) gives the offset."""
    best_width, best = math.inf, 0.0
    for _ in range(OFFSET_READS):
        before = time.perf_counter()
        link_seconds = micros() * 1e-6
        after = time.perf_counter()
        if after - before < best_width:
            best_width, best = after - before, (before + after) / 2 - link_seconds
    return best


class LinkFollower:
    """A Link peer that joins the session on the network and gives its grid.

    `bpm` is our tempo while we are alone; once a peer is found, the session's tempo wins.
    Link's timeline always runs, so there is always a grid, unlike a stopped MIDI clock; the
    session's transport (start/stop sync, switched on here) is `playing`, for a mode that
    follows it (backing_mode.py)."""

    def __init__(self, bpm: float, beats_per_bar: int = 4):
        binding = import_link()
        self.quantum = beats_per_bar
        self._link = binding.Link(bpm)
        self._clock = self._link.clock()
        self._link.startStopSyncEnabled = True  # peers share their transport's start/stop
        self._link.enabled = True  # starts discovery (UDP multicast) on Link's own threads
        # (grid, perf_counter time it expires, playing): one tuple, so the control and status
        # threads each see a consistent set without a lock.
        self._cached: tuple[BeatGrid, float, bool] | None = None

    @property
    def peers(self) -> int:
        return self._link.numPeers()

    def grid(self) -> BeatGrid:
        return self._current()[0]

    @property
    def playing(self) -> bool:
        """The session's transport plays (as of the last refresh)."""
        return self._current()[2]

    def _current(self) -> tuple[BeatGrid, float, bool]:
        now = time.perf_counter()
        cached = self._cached
        if cached is not None and now < cached[1]:
            return cached
        state = self._link.captureSessionState()
        self._cached = (self._capture(state), now + REFRESH, bool(state.isPlaying()))
        return self._cached

    def _capture(self, state: Any) -> BeatGrid:
        offset = clock_offset(self._clock.micros)
        micros = self._clock.micros()
        # The grid's beat 0 is the session's last bar line: small numbers, and a BeatGrid's
        # origin must be a downbeat. Link's timeline is exact there; its tempo() is the
        # display value, whose tiny drift compensation does not matter over one refresh.
        beat = state.beatAtTime(micros, self.quantum)
        downbeat = round((beat - state.phaseAtTime(micros, self.quantum)) / self.quantum)
        origin = state.timeAtBeat(downbeat * self.quantum, self.quantum) * 1e-6 + offset
        return BeatGrid(state.tempo(), origin, self.quantum)

    def close(self) -> None:
        """Leave the session."""
        self._link.enabled = False
