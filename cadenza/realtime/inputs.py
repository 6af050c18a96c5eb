"""Several MIDI inputs at once, each with its roles: `--in keyboard --in "nanoKONTROL:controls"
--in "DAW:clock"` (a keyboard, a knob box and a clock source are often three devices).

A port is `NAME` (every role) or `NAME:ROLE[,ROLE...]`, the roles being
- notes: what the player plays (notes, the pedal and the other controllers a mode hears);
- controls: the controllers mapped to knobs (`cc:` settings, --end-cc, --select-cc ...);
- clock: MIDI clock, Start/Stop/Continue and song position (a port named for it follows it).
Text after the last ':' is read as roles only when it is made of role words, so JACK and ALSA
names such as `system:midi_capture_1` stay whole. When one port is named for the clock, the
ports given without roles do not carry it: one clock, one grid.
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cadenza.midi_status import CONTROL_CHANGE, SYSTEM

if TYPE_CHECKING:  # config.py parses --in with this module: no rtmidi for that
    from cadenza.realtime.midi_io import MidiInput

ROLES = ("notes", "controls", "clock")
ALL = frozenset(ROLES)


@dataclass(frozen=True)
class InputRoute:
    """One --in: the port's name (or a part of it) and what it is read for."""

    pattern: str
    roles: frozenset[str] = ALL
    named_roles: bool = False  # the roles were written out (NAME:ROLES)

    def __str__(self) -> str:
        return f"{self.pattern}:{','.join(r for r in ROLES if r in self.roles)}"


def parse_input(text: str) -> InputRoute:
    """`NAME` or `NAME:ROLE[,ROLE...]`; a ValueError for an unknown role or an empty name."""
    name, colon, suffix = text.rpartition(":")
    words = [w.strip().lower() for w in suffix.replace("+", ",").split(",")]
    known = [w in (*ROLES, "all") for w in words]
    if not colon or not any(known):
        return InputRoute(text.strip())
    if not all(known):
        bad = next(w for w, ok in zip(words, known, strict=True) if not ok)
        raise ValueError(f"{text!r}: unknown role {bad!r} (roles: {', '.join(ROLES)}, all)")
    if not name.strip():
        raise ValueError(f"{text!r}: a port name goes before ':{suffix}'")
    roles = ALL if "all" in words else frozenset(words)
    return InputRoute(name.strip(), roles, named_roles=True)


def input_routes(texts: Sequence[str]) -> list[InputRoute]:
    """The routes of several --in, the clock left to the port named for it (if any); a
    ValueError when two ports are named for the clock."""
    routes = [parse_input(t) for t in texts]
    clocks = [r for r in routes if r.named_roles and "clock" in r.roles]
    if len(clocks) > 1:
        raise ValueError(f"one clock source at a time, got {', '.join(map(str, clocks))}")
    if clocks:
        routes = [r if r.named_roles else InputRoute(r.pattern, ALL - {"clock"})
                  for r in routes]
    return routes


def role_of(raw: bytes | Sequence[int], knobs: frozenset[int]) -> str:
    """Which role a message belongs to (`knobs`: the controller numbers mapped to knobs)."""
    if raw and raw[0] >= SYSTEM:
        return "clock"
    if len(raw) >= 2 and raw[0] & 0xF0 == CONTROL_CHANGE and raw[1] in knobs:
        return "controls"
    return "notes"


class InputPorts:
    """Several input ports read as one by the engine (MidiInput's interface): drain() merges
    their messages by time, each kept only when its port has the message's role."""

    def __init__(self, ports: Iterable[tuple[MidiInput, frozenset[str]]],
                 knobs: Iterable[int]):
        self.ports = list(ports)
        self.knobs = frozenset(knobs)
        self._arrived = threading.Event()  # one for all: the control loop waits on one
        for port, _ in self.ports:
            port.share_arrival(self._arrived)

    @property
    def name(self) -> str:
        return ", ".join(f"{port.name} ({'+'.join(r for r in ROLES if r in roles)})"
                         for port, roles in self.ports)

    @property
    def dropped(self) -> int:
        return sum(port.dropped for port, _ in self.ports)

    def drain(self) -> list[tuple[float, bytes]]:
        knobs = self.knobs
        streams = [[(t, raw) for t, raw in port.drain() if role_of(raw, knobs) in roles]
                   for port, roles in self.ports]
        return list(heapq.merge(*streams, key=lambda event: event[0]))

    def wait(self, timeout: float) -> None:
        if self._arrived.wait(timeout):
            self._arrived.clear()

    def is_alive(self) -> bool:
        return all(port.is_alive() for port, _ in self.ports)

    def reconnect_if_back(self) -> bool:
        """Each lost port reconnects when it is back; True once all of them are."""
        for port, _ in self.ports:
            if not port.is_alive():
                port.reconnect_if_back()
        return self.is_alive()

    def close(self) -> None:
        for port, _ in self.ports:
            port.close()
