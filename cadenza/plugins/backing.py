"""The `backing` plugin: a Music Transformer over parts on a grid, backing a player.

The bundle is a transformer bundle (`prefill` and cached `step` graphs, as `transformer`)
whose vocabulary is `cadenza.parts`: one frame of tokens per grid step. A step goes in three
calls: `open_step` starts its frame, `hear` adds the player's note-offs and note-ons on it, and
`play` samples the backing's note-offs and note-ons. A bundle whose frames put the player first
(`listens`) is called open, hear, play: the backing of a step knows the player's note of it.
An older bundle (backing first) is called open, play, hear: its backing is chosen before the
player's notes of the step. Sampling happens on the host over the backing tokens that keep the
frame valid (ascending, an off only for a sounding note, an on only for a silent one) plus "end
of the backing": the mass of every other token.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import cached_property
from typing import Any

import numpy as np

from cadenza.bundle import Bundle
from cadenza.parts import (
    OFF,
    ON,
    PITCHES,
    PLAYER_OFF,
    PLAYER_ON,
    PartsCodec,
    default_programs,
)
from cadenza.pianoroll import make_grid_notes
from cadenza.plugins.anticipation import Anticipation
from cadenza.plugins.base import BackingGenerator, Change
from cadenza.plugins.manifests import BackingManifest
from cadenza.plugins.sampling import sample
from cadenza.plugins.transformer import CachedTransformer

MAX_CHANGES = 16  # backing notes started or ended on one step, at most
DEFAULT_HARMONY = 1.0  # the harmony knob's starting value, chosen by the check (docs/BACKING.md)
HARMONY_RANGE = (0.0, 4.0)  # the knob's range: 0 leaves the model alone
DEFAULT_VOICES = 4  # notes a part sounds at once, for a bundle made before `backing.voices`


class BackingTransformer(CachedTransformer, BackingGenerator):
    plugin = "backing"
    manifest_type = BackingManifest
    manifest: BackingManifest

    def __init__(self, bundle: Bundle, *, seed: int | None = None, context: int | None = None):
        self.density = 0.0  # a bias on note-ons, in log-odds: above 0 busier, below sparser
        # A backing note held this long (at density 0; longer when sparser) ends: chorale
        # voices hold 99% of their notes 3 beats or less, and a model that lost its way can
        # otherwise hold one for the rest of the piece (see play_step).
        self.max_hold_beats = 4.0
        super().__init__(bundle, seed=seed, context=context)
        is_on = np.zeros(self.vocab_size, dtype=bool)
        is_on[self.parts.on_base : self.parts.backing_end] = True
        self._is_on = is_on
        backing, parts = self.manifest.backing, self.parts.parts
        # Each part's register, program and voices as trained (a bundle made before them:
        # all 128 pitches, each name's default program, 4 voices).
        self.ranges = list(backing.ranges or [(0, 127)] * parts)
        self.programs = list(backing.programs or default_programs(self.parts.names))
        self.voices = list(backing.voices or [DEFAULT_VOICES] * parts)  # notes held at once
        # The harmony knob: how far the backing's choices lean on the bundle's interval table
        # (what the training music sounds with the player's note); 0 leaves the model alone.
        self.intervals = None if backing.harmony is None else np.array(backing.harmony)
        self.harmony = DEFAULT_HARMONY if self.intervals is not None else 0.0
        # Each part's note-ons inside its register (the rest of its 128 pitches never start)
        in_range = np.zeros(self.vocab_size, dtype=bool)
        for part, (low, high) in enumerate(self.ranges):
            in_range[self.parts.on(part, low) : self.parts.on(part, high) + 1] = True
        self._in_range = in_range

    @cached_property
    def parts(self) -> PartsCodec:
        """The token layout (the manifest's representation); read from the first reset on."""
        return self.manifest.representation.codec()

    # --- state ----------------------------------------------------------------------------
    def reset(self) -> None:
        self._held_steps: dict[tuple[int, int], int] = {}  # (part, pitch) -> steps sounding
        self.sounding: list[set[int]] = [set() for _ in range(self.parts.parts)]
        self.player_sounding: set[int] = set()
        self._pending: list[int] = []  # offs to write into the next frame (after a silence)
        self._last_fed = 0
        self._bias: np.ndarray | None = None
        self._played = False  # the open step's backing is played (a frame takes no more)
        self._enter_all()
        super().reset()

    @property
    def listens(self) -> bool:
        """The player's notes of a step come before its backing (hear, then play)."""
        return self.parts.player_first

    def prime(self, events: Any, conditions: dict[str, Any] | None = None) -> None:
        super().prime(events, conditions)
        self._held_steps = {}
        self.sounding = [set() for _ in range(self.parts.parts)]
        self.player_sounding = set()
        self._pending = []
        for token in self.history:
            self._track(int(token))
        self._last_fed = int(self.history[-1]) if len(self.history) else 0
        self._silent_steps = [0 if held else self.parts.steps_per_quarter for held in self.sounding]

    def _track(self, token: int) -> None:
        kind, part, pitch = self.parts.describe(token)
        if kind == ON:
            self.sounding[part].add(pitch)
            self._held_steps[(part, pitch)] = 0
        elif kind == OFF:
            self.sounding[part].discard(pitch)
            self._held_steps.pop((part, pitch), None)
        elif kind == PLAYER_ON:
            self.player_sounding.add(pitch)
        elif kind == PLAYER_OFF:
            self.player_sounding.discard(pitch)

    def feed(self, event: int) -> None:
        super().feed(event)
        self._track(event)
        self._last_fed = event

    def context_state(self) -> tuple[Any, tuple]:
        sounding = [set(held) for held in self.sounding]
        mine = (sounding, set(self.player_sounding), list(self._pending), list(self._silent_steps),
                dict(self._held_steps), self._last_fed, self._played)
        return super().context_state(), mine

    def restore_context(self, state: tuple[Any, tuple]) -> None:
        inner, (sounding, player, pending, silent, held, last, played) = state
        super().restore_context(inner)
        self.sounding = [set(h) for h in sounding]
        self.player_sounding, self._pending = set(player), list(pending)
        self._silent_steps, self._held_steps, self._last_fed = list(silent), dict(held), last
        self._played = played

    # --- a step of the grid ---------------------------------------------------------------
    def open_step(self, position: int) -> None:
        """Start the frame of a step at `position` in its bar."""
        self.feed(self.parts.step(position))
        self._played = False
        for note in self._held_steps:
            self._held_steps[note] += 1

    def player_probability(self) -> float:
        """On an open step of a listening bundle, before hearing it: how likely the model finds
        it that the player ends or starts a note on this step (a beat of a melody: high; the
        16th after a held note: low). The live loop waits for the player only where it is
        likely. (A note-off counts: a melody's note that ends on a beat is followed by the next
        one, and a frame has the player's note-offs before its note-ons.)"""
        p = self.parts
        logits = self.logits.astype(np.float64)
        total = np.logaddexp.reduce(logits)
        played = np.logaddexp.reduce(logits[p.player_off_base : p.player_on_base + PITCHES])
        return float(np.exp(played - total))

    def play_step(self, position: int, forced: Iterable[Change] | None = None,
                  offs: Iterable[int] = (), ons: Iterable[int] = ()) -> list[Change]:
        """A whole step in the bundle's order: open it, hear the player's `offs` and `ons` on it
        and play (a backing-first bundle plays, then hears: its backing does not know them)."""
        self.open_step(position)
        if self.listens:
            self.hear(offs, ons)
            return self.play(forced)
        changes = self.play(forced)
        self.hear(offs, ons)
        return changes

    def play(self, forced: Iterable[Change] | None = None,
             emit: Callable[[Change], None] | None = None) -> list[Change]:
        """Sample the backing's changes on the open step (or take `forced` ones: a loop
        replaying what it played). Returns the changes, note-offs first; `emit` gets each one
        as soon as it is chosen, before the model takes it in (a millisecond a change), so that
        a live loop can send it at once."""
        self._played = True
        changes: list[Change] = []

        def take(token: int) -> None:
            change = self._change(token)
            changes.append(change)
            if emit is not None:
                emit(change)
            self.feed(token)

        for token in sorted(self._pending):  # the notes a silence ended, heard to end here
            self.feed(token)
        self._pending = []
        if forced is not None:
            for token in sorted(self._token_of(c) for c in forced):
                if self._valid(token):
                    take(token)
            return changes
        # Notes held past the limit end first on this step (the frame's smallest tokens: other
        # note-offs of lower-numbered parts wait for the next step).
        limit = self.max_hold_beats * self.parts.steps_per_quarter * 2.0 ** -self.density
        overdue = [self.parts.off(part, pitch)
                   for (part, pitch), held in self._held_steps.items() if held > limit]
        for token in sorted(overdue):
            take(token)
        # A part silent for a beat or more (at density 0; longer when sparser) enters on this
        # step. Trained on windows that start mid-piece, the model takes a silent part for a
        # note it cannot see and waits for it to end; once the part sounds, it knows it.
        self._silent_steps = [
            0 if held else n + 1 for held, n in zip(self.sounding, self._silent_steps, strict=True)
        ]
        rest = self.parts.steps_per_quarter * 2.0 ** -self.density  # sparser: longer rests
        self._entering = [part for part, n in enumerate(self._silent_steps) if n > rest]
        self._bias = self._harmony_bias()
        last = max(self._last_fed, self.parts.off_base - 1)
        while len(changes) < MAX_CHANGES:
            token = self._sample_backing(last)
            if token is None:
                break
            take(token)
            last = token
        return changes

    def hear(self, offs: Iterable[int] = (), ons: Iterable[int] = ()) -> None:
        """The player's note-offs and note-ons on the open step."""
        if self.listens and self._played:
            raise RuntimeError("this bundle hears the player's notes of a step before it plays "
                               "it: call open_step, hear, then play (or play_step)")
        for token in self.player_tokens(offs, ons):
            self.feed(token)

    def player_tokens(self, offs: Iterable[int] = (), ons: Iterable[int] = ()) -> list[int]:
        """The tokens `hear` feeds for the player's note-offs and note-ons on a step."""
        ons = set(int(p) for p in ons)
        ending = {int(p) for p in offs} | ons  # a repeated key ends its sounding note first
        tokens = [self.parts.player_off(p) for p in sorted(ending & self.player_sounding)]
        return tokens + [self.parts.player_on(p) for p in sorted(ons)]

    def anticipate(self, count: int) -> Anticipation:
        """On an open step of a listening bundle: its backing, computed ahead for the `count`
        notes the player is likeliest to play on it (see Anticipation)."""
        return Anticipation(self, count)

    def silence(self) -> list[tuple[int, int]]:
        """End every backing note (a stop, a panic): returns them as (part, pitch); the model
        hears them end at the start of the next step."""
        ended = [(part, pitch) for part, held in enumerate(self.sounding) for pitch in held]
        self._pending = [self.parts.off(part, pitch) for part, pitch in ended]
        self.sounding = [set() for _ in range(self.parts.parts)]
        self._held_steps = {}
        self._enter_all()
        return sorted(ended)

    def _enter_all(self) -> None:
        """Every part enters at the next step (from a reset or a silence)."""
        self._silent_steps = [self.parts.steps_per_quarter] * self.parts.parts

    # --- sampling -------------------------------------------------------------------------
    def _harmony_bias(self) -> np.ndarray | None:
        """Log-odds added to the backing's tokens on this step: a note-on by how well its pitch
        goes with the player's sounding notes (the interval table, times the harmony knob), a
        held note's note-off by how badly it now does. None with no player note or no knob."""
        if not self.harmony or self.intervals is None or not self.player_sounding:
            return None
        pitches = np.arange(128)
        fit = np.mean([self.intervals[(p - pitches) % 12] for p in self.player_sounding], axis=0)
        bias = np.zeros(self.vocab_size)
        for part in range(self.parts.parts):
            bias[self.parts.on(part, 0) : self.parts.on(part, 127) + 1] = self.harmony * fit
            bias[self.parts.off(part, 0) : self.parts.off(part, 127) + 1] = -self.harmony * fit
        return bias

    def _token_of(self, change: Change) -> int:
        part, pitch, on = change
        return self.parts.on(part, pitch) if on else self.parts.off(part, pitch)

    def _change(self, token: int) -> Change:
        kind, part, pitch = self.parts.describe(token)
        return part, pitch, kind == ON

    def _valid(self, token: int) -> bool:
        kind, part, pitch = self.parts.describe(token)
        if kind == OFF:
            return pitch in self.sounding[part]
        return kind == ON and pitch not in self.sounding[part]

    def _sample_backing(self, last: int) -> int | None:
        """A backing token above `last` that keeps the frame valid, or None for the end."""
        p = self.parts
        allowed = np.zeros(self.vocab_size, dtype=bool)
        for part, held in enumerate(self.sounding):
            for pitch in held:
                allowed[p.off(part, pitch)] = True
            if len(held) < self.voices[part]:
                base = p.on(part, 0)
                allowed[base : base + 128] = self._in_range[base : base + 128]
                for pitch in held:
                    allowed[p.on(part, pitch)] = False
        allowed[: last + 1] = False
        if self._entering:  # parts that must enter on this step, in order
            ahead = [q for q in self._entering if not self.sounding[q] and p.on(q, 127) > last]
            if ahead:
                entry = np.zeros_like(allowed)
                base = p.on(ahead[0], 0)
                entry[base : base + 128] = allowed[base : base + 128]
                candidates = np.flatnonzero(entry)
                scores = self.logits.astype(np.float64)[candidates]
                if self._bias is not None:
                    scores = scores + self._bias[candidates]
                return int(candidates[sample(scores, self.knobs, self.rng)])
        candidates = np.flatnonzero(allowed)
        logits = self.logits.astype(np.float64)
        rest = np.ones(self.vocab_size, dtype=bool)
        rest[p.off_base : p.backing_end] = False  # every non-backing token means "end"
        end = float(np.logaddexp.reduce(logits[rest]))
        scores = logits[candidates] + self.density * self._is_on[candidates]
        if self._bias is not None:
            scores = scores + self._bias[candidates]
        choice = sample(np.append(scores, end), self.knobs, self.rng)
        return None if choice >= len(candidates) else int(candidates[choice])


def accompany(
    generator: BackingTransformer,
    player: np.ndarray,
    positions: np.ndarray,
    *,
    velocity: int = 80,
    lag: int = 0,
) -> list[np.ndarray]:
    """Backing parts (grid notes per part) for a player's grid notes, step by step as live
    (a listening bundle hears the player's notes of a step before it plays it; with `lag` 1
    it hears them a step late, as a loop that plans each step ahead has them).
    `positions` is each step's position in its bar; notes still sounding at the end close there."""
    starts: dict[tuple[int, int], int] = {}
    found: list[list[tuple[int, int, int]]] = [[] for _ in range(generator.parts.parts)]
    ons = {int(t): [] for t in np.unique(player["start"])}
    offs = {int(t): [] for t in np.unique(player["end"])}
    for note in player:
        ons[int(note["start"])].append(int(note["pitch"]))
        offs[int(note["end"])].append(int(note["pitch"]))
    steps = len(positions)
    for t in range(steps):
        heard = t - lag
        changes = generator.play_step(int(positions[t]), None, offs.get(heard, ()),
                                      ons.get(heard, ()))
        for part, pitch, on in changes:
            if on:
                starts[(part, pitch)] = t
            elif (part, pitch) in starts:
                found[part].append((starts.pop((part, pitch)), t, pitch))
    for (part, pitch), start in starts.items():
        found[part].append((start, steps, pitch))
    generator.silence()
    return [make_grid_notes(sorted(items), velocity) for items in found]


__all__ = ["Anticipation", "BackingTransformer", "Change", "accompany"]
