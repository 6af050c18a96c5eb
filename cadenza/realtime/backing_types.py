"""What the backing loop (backing.py) works with: a step's changes, and the protocols of the
backing generator (cadenza.plugins.backing) and of the output the changes go to."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

Change = tuple[int, int, bool]  # (part, pitch, True for a note-on), as the backing plugin has it
Note = tuple[int, int]  # (part, pitch)


class BackingGenerator(Protocol):
    """What the loop needs of cadenza.plugins.backing.BackingTransformer."""

    sounding: list[set[int]]
    density: float
    listens: bool  # the player's notes of a step come before its backing

    def play_step(self, position: int, forced: Iterable[Change] | None = None,
                  offs: Iterable[int] = (), ons: Iterable[int] = ()) -> list[Change]: ...

    def open_step(self, position: int) -> None: ...

    def player_probability(self) -> float: ...

    def anticipate(self, count: int) -> Anticipated: ...

    def play(self, forced: Iterable[Change] | None = None,
             emit: Callable[[Change], None] | None = None) -> list[Change]: ...

    def hear(self, offs: Iterable[int] = (), ons: Iterable[int] = ()) -> None: ...

    def silence(self) -> list[tuple[int, int]]: ...

    def set_style(self, style: str | None) -> None: ...

    def snapshot(self) -> object: ...

    def restore(self, state: object) -> None: ...


class Anticipated(Protocol):
    """What the loop needs of cadenza.plugins.backing.Anticipation."""

    pending: list

    def step(self) -> bool: ...

    def take(self, offs: Iterable[int], ons: Iterable[int]) -> list[Change] | None: ...

    def hear(self, offs: Iterable[int], ons: Iterable[int]) -> None: ...


class Output(Protocol):
    """Where the changes go: the engine's Scheduler (it knows what sounds, see end_channels)."""

    def schedule_many(self, events: Iterable[tuple[float, Sequence[int]]]) -> None: ...

    def end_channels(self, channels: Iterable[int]) -> None: ...
