"""Anticipation: a listening backing's step computed ahead, while the live loop waits for the
player's note of it (cadenza.plugins.backing's `anticipate`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

import numpy as np

from cadenza.parts import PITCHES, PartsCodec
from cadenza.plugins.base import Change, Snapshot


class Anticipating(Protocol):
    """What anticipating needs of a backing generator (cadenza.plugins.backing's)."""

    parts: PartsCodec
    player_sounding: set[int]
    logits: np.ndarray | None

    def snapshot(self) -> Snapshot: ...

    def restore(self, state: Snapshot) -> None: ...

    def feed(self, event: int) -> None: ...

    def player_tokens(self, offs: Iterable[int] = (), ons: Iterable[int] = ()) -> list[int]: ...

    def hear(self, offs: Iterable[int] = (), ons: Iterable[int] = ()) -> None: ...

    def play(self, forced: Iterable[Change] | None = None,
             emit: Callable[[Change], None] | None = None) -> list[Change]: ...


class Anticipation:
    """The backing of an open step computed ahead, while the live loop waits for the player's
    note of it, for the notes the player is likeliest to play: the notes the player holds end
    (a melody; fed once, ahead, for every guess), then one of the model's `count` likeliest
    pitches starts. One guess a `step()`, so that a note arriving meanwhile waits for one guess
    at most. When the note comes, `take` gives its backing at once if it was foreseen; if not,
    `hear` takes it in from the note-offs already fed, and the step is played as usual. The
    generator is always left as it was before, RNG included, so what a foreseen note gets is
    exactly what it would have got: anticipating changes when, never what."""

    def __init__(self, generator: Anticipating, count: int):
        self.generator = generator
        self.start = generator.snapshot()
        offs = sorted(generator.player_sounding)
        self.off_tokens = generator.player_tokens(offs)
        for token in self.off_tokens:
            generator.feed(token)
        self.after_offs = generator.snapshot()
        parts = generator.parts
        logits = generator.logits[parts.player_on_base : parts.player_on_base + PITCHES]
        pitches = np.argsort(logits)[::-1][:count]
        generator.restore(self.start)
        # (note-offs, note-ons) of each guess, likeliest first
        self.candidates: list[tuple[list[int], list[int]]] = [(offs, [int(q)]) for q in pitches]
        self.pending = list(self.candidates)
        self.ready: dict[tuple[int, ...], tuple[list[Change], Snapshot]] = {}

    def step(self) -> bool:
        """Compute the next guess's backing; whether any remain."""
        if self.pending:
            offs, ons = self.pending.pop(0)
            generator = self.generator
            tokens = generator.player_tokens(offs, ons)
            self._feed_from_offs(tokens)
            changes = generator.play()
            self.ready[tuple(tokens)] = (changes, generator.snapshot())
            generator.restore(self.start)
        return bool(self.pending)

    def take(self, offs: Iterable[int], ons: Iterable[int]) -> list[Change] | None:
        """The foreseen backing of what the player played (the generator now past it), or
        None: not foreseen (the generator as before)."""
        found = self.ready.get(tuple(self.generator.player_tokens(offs, ons)))
        if found is None:
            return None
        changes, state = found
        self.generator.restore(state)
        return list(changes)

    def hear(self, offs: Iterable[int], ons: Iterable[int]) -> None:
        """The generator hears what the player played, as `BackingTransformer.hear`, from the
        note-offs fed ahead when they were the ones played."""
        tokens = self.generator.player_tokens(offs, ons)
        if tokens[: len(self.off_tokens)] == self.off_tokens:
            self._feed_from_offs(tokens)
        else:
            self.generator.hear(offs, ons)

    def _feed_from_offs(self, tokens: list[int]) -> None:
        self.generator.restore(self.after_offs)
        for token in tokens[len(self.off_tokens) :]:
            self.generator.feed(token)
