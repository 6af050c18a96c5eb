"""What the live engine asks of the mode that plays (call-and-response, accompany, backing).

The engine (engine.py) does what every mode needs: it starts and stops, drains the input,
follows and sends the clock, watches the ports and ends every note on the way out. A mode owns
what it plays: it is handed the player's notes and the transport, polled on the control thread,
and given the knobs whose meaning is its own (controls.ControlSurface turns them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from cadenza.kinds import LiveModeName, all_kinds
from cadenza.plugins.base import Generator


def live_mode_of(generator: Generator) -> LiveModeName | None:
    """The live mode the generator's model kind plays in, as the registry of kinds declares
    it (cadenza.kinds); None for a kind that does not play live (codec-lm's audio)."""
    kind = all_kinds().get(generator.plugin)
    return kind.live if kind is not None else None


def plays_backing_parts(generator: Generator) -> bool:
    """A generator of backing parts, stepped along the grid (cadenza.plugins.backing)."""
    return live_mode_of(generator) == "backing"


def makes_performance_events(generator: Generator) -> bool:
    """A generator the live engine plays: performance events, or backing parts."""
    return live_mode_of(generator) is not None


@dataclass
class EngineStats:
    """Figures for the status line and the benchmarks (written by the control thread)."""

    phrases: int = 0
    answers: int = 0
    detected_at: list[float] = field(default_factory=list)  # perf_counter of each phrase end
    handled_at: list[float] = field(default_factory=list)  # when the control thread saw it
    detect_to_start: list[float] = field(default_factory=list)  # answer start - detection
    error: str | None = None
    input_lost: bool = False
    malformed: int = 0  # input messages that were no well-formed MIDI, dropped
    reconnects: int = 0


class LiveMode(Protocol):
    """A mode of `cadenza live`. Unless said otherwise, called on the control thread."""

    generator: Generator  # the one playing now (another bundle may take its place)
    style: str | None

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        """Begin playing (the grid has just been set to start with the engine)."""

    def close(self) -> None:
        """Stop the mode's own threads; the engine ends every note afterwards."""

    # --- input ---------------------------------------------------------------------------------
    def player(self, t: float, message: Sequence[int]) -> None:
        """A note or controller the player played at `t` (on the input channel, not a knob)."""

    def transport(self, t: float, status: int) -> None:
        """A system message of a followed MIDI clock (Start, Continue, Stop, song position),
        after the clock follower took it in."""

    def input_lost(self) -> None:
        """The input port is gone: keys held on it will never be released."""

    # --- the control step ------------------------------------------------------------------
    def poll(self, now: float) -> None:
        """What is due at `now` (a phrase's end, a backing step); may raise (the engine stops
        and reports it)."""

    def pause(self, now: float) -> float:
        """Seconds until the control loop is next needed."""

    # --- knobs (from any thread) --------------------------------------------------------------
    def set_style(self, style: str | None) -> None: ...

    def turn_bars(self, delta: int) -> None: ...

    def set_answer_bars(self, bars: int) -> None: ...

    def turn_silence(self, delta: float) -> None: ...

    def toggle_loop(self) -> None: ...

    def set_density(self, density: float) -> None: ...

    def turn_density(self, delta: float) -> None: ...

    def mutate(self, t: float | None) -> None: ...

    def interrupt(self) -> None:
        """Stop what it plays now: nothing more of it is sent, its sounding notes end."""

    def take(self, generator: Generator) -> bool:
        """Play on with `generator` (another bundle) if this mode can; False if not."""

    # --- for the player ------------------------------------------------------------------------
    def status(self, late: str) -> str:
        """The status line (`late`: the scheduler's lateness, formatted)."""

    def banner(self) -> str:
        """What the start line says of the output beside its channel ('' for nothing)."""
