"""Parts on a grid: the token stream of the backing model.

A piece is a player's part and up to `parts` backing parts (e.g. the soprano of a chorale, and
its alto, tenor and bass) on a grid of `steps_per_quarter` steps a quarter note. Every step of
the grid is one frame of tokens, in ascending token order:

    STEP(position in bar)  player offs  player ons  backing offs  backing ons

The player comes before the backing in its frame ("listen, then play"): the backing of a step is
chosen knowing the player's note of that step, so that it harmonises it. Live, the engine waits
for the player's notes of a step (a few milliseconds past its grid point at most) before it
generates the step's backing and sends it (cadenza.realtime.backing).

Bundles made before December 2026 have the other order (`order: backing-first`: the backing of a
step before the player's notes of it, chosen from the player's notes up to the step before);
they still play, on the grid point, hearing the player one step late.

The position tokens tell the model where the bar lines are, which the live engine takes from
its clock. Frames are in ascending token order, so a generator stays in the training
distribution by only allowing tokens above the last one of the frame.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from cadenza.pianoroll import make_grid_notes

PITCHES = 128
STEP, OFF, ON, PLAYER_OFF, PLAYER_ON = "step", "off", "on", "player_off", "player_on"


PLAYER_FIRST, BACKING_FIRST = "player-first", "backing-first"
ORDERS = (PLAYER_FIRST, BACKING_FIRST)
SATB_NAMES = ("alto", "tenor", "bass")


# A part's General MIDI program (0-based) by its name, when neither the bundle nor the player
# names one: strings for inner voices and chords, an acoustic bass for the bass.
PROGRAMS_BY_NAME = {"soprano": 52, "alto": 48, "tenor": 48, "bass": 32, "chords": 48}


def default_names(parts: int) -> tuple[str, ...]:
    return SATB_NAMES if parts == 3 else tuple(f"part {k + 1}" for k in range(parts))


def default_programs(names: tuple[str, ...]) -> list[int]:
    return [PROGRAMS_BY_NAME.get(name, 0) for name in names]


@dataclass(frozen=True)
class PartsCodec:
    """Token layout: STEP(0..positions-1), then (player-first) player OFF(pitch) | player
    ON(pitch) | OFF(part, pitch) | ON(part, pitch); backing-first puts the player's after."""

    parts: int = 3
    steps_per_quarter: int = 4
    positions: int = 32  # position tokens: the steps of the longest bar kept (8 quarters)
    order: str = PLAYER_FIRST
    names: tuple[str, ...] = SATB_NAMES  # each backing part's name, highest first

    kind = "parts"

    def __post_init__(self) -> None:
        if self.order not in ORDERS:
            raise ValueError(f"order must be one of {', '.join(ORDERS)}, got {self.order!r}")
        if len(self.names) != self.parts:
            raise ValueError(f"{self.parts} parts need {self.parts} names, got {self.names!r}")

    @property
    def player_first(self) -> bool:
        return self.order == PLAYER_FIRST

    @property
    def off_base(self) -> int:
        return self.positions + (2 * PITCHES if self.player_first else 0)

    @property
    def on_base(self) -> int:
        return self.off_base + self.parts * PITCHES

    @property
    def backing_end(self) -> int:
        return self.on_base + self.parts * PITCHES

    @property
    def player_off_base(self) -> int:
        return self.positions if self.player_first else self.backing_end

    @property
    def player_on_base(self) -> int:
        return self.player_off_base + PITCHES

    @property
    def vocab_size(self) -> int:
        return self.positions + 2 * (self.parts + 1) * PITCHES

    def step(self, position: int) -> int:
        return min(max(int(position), 0), self.positions - 1)

    def off(self, part: int, pitch: int) -> int:
        return self.off_base + part * PITCHES + pitch

    def on(self, part: int, pitch: int) -> int:
        return self.on_base + part * PITCHES + pitch

    def player_off(self, pitch: int) -> int:
        return self.player_off_base + pitch

    def player_on(self, pitch: int) -> int:
        return self.player_on_base + pitch

    def describe(self, token: int) -> tuple[str, int, int]:
        """(kind, part, pitch or position): part is -1 for the player and for STEP."""
        token = int(token)
        if not 0 <= token < self.vocab_size:
            raise ValueError(f"token {token} is outside the vocabulary of {self.vocab_size}")
        if token < self.positions:
            return STEP, -1, token
        if self.off_base <= token < self.on_base:
            return OFF, *divmod(token - self.off_base, PITCHES)
        if self.on_base <= token < self.backing_end:
            return ON, *divmod(token - self.on_base, PITCHES)
        if token < self.player_on_base:
            return PLAYER_OFF, -1, token - self.player_off_base
        return PLAYER_ON, -1, token - self.player_on_base

    def pitch_ranges(self, tokens: np.ndarray) -> list[tuple[int, int]]:
        """Each backing part's lowest and highest note-on pitch in `tokens` ((0, 127) for a
        part that never plays): the registers a model trained on them knows."""
        tokens = np.asarray(tokens, dtype=np.int64)
        ons = tokens[(tokens >= self.on_base) & (tokens < self.backing_end)] - self.on_base
        part, pitch = np.divmod(ons, PITCHES)
        return [(int(pitch[part == k].min()), int(pitch[part == k].max()))
                if np.any(part == k) else (0, PITCHES - 1) for k in range(self.parts)]

    def is_backing(self, tokens: np.ndarray) -> np.ndarray:
        tokens = np.asarray(tokens)
        return (tokens >= self.off_base) & (tokens < self.backing_end)

    def is_step(self, tokens: np.ndarray) -> np.ndarray:
        return np.asarray(tokens) < self.positions

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "parts": self.parts,
            "steps_per_quarter": self.steps_per_quarter,
            "positions": self.positions,
            "order": self.order,
            "names": list(self.names),
        }

    @classmethod
    def from_dict(cls, data: dict) -> PartsCodec:
        """A representation section; without `order` it is a bundle or corpus made before the
        player came first (backing-first)."""
        parts = int(data.get("parts", 3))
        return cls(
            parts=parts,
            steps_per_quarter=int(data.get("steps_per_quarter", 4)),
            positions=int(data.get("positions", 32)),
            order=str(data.get("order", BACKING_FIRST)),
            names=tuple(str(n) for n in data.get("names", default_names(parts))),
        )

    # --- pieces <-> tokens --------------------------------------------------------------
    def positions_of(self, steps: int, bar_starts: np.ndarray, bar_steps: np.ndarray) -> np.ndarray:
        """Each step's position in its bar. Steps before the first bar line (a pickup) count
        back from it as the end of a bar as long as the first."""
        t = np.arange(steps)
        if len(bar_starts) == 0:
            return t % (4 * self.steps_per_quarter)
        i = np.searchsorted(bar_starts, t, side="right") - 1
        before = i < 0
        i = np.maximum(i, 0)
        position = t - bar_starts[i]
        position[before] = bar_steps[0] - (bar_starts[0] - t[before])
        return np.mod(position, np.maximum(bar_steps[i], 1))

    def encode(
        self,
        player: np.ndarray,
        backing: list[np.ndarray],
        bar_starts: np.ndarray,
        bar_steps: np.ndarray,
        start: int = 0,
        stop: int | None = None,
    ) -> np.ndarray:
        """Grid notes (GRID_NOTE_DTYPE, steps) of the player and of each backing part -> tokens,
        one frame per step from `start` (0) to `stop` (the last note's end). Backing parts past
        `parts` are left out; a pitch's second onset before its end in one part ends the first
        note. From a `start` inside the piece, the notes sounding there start in its first
        frame: the excerpt says what sounds, as a live context does."""
        if len(backing) > self.parts:
            backing = backing[: self.parts]
        ends = [int(n["end"].max()) for n in (player, *backing) if len(n)]
        steps = max(ends, default=0) + 1
        stop = steps if stop is None else min(stop, steps)
        positions = self.positions_of(steps, bar_starts, bar_steps)[start:stop]
        frames: list[list[int]] = [[self.step(p)] for p in positions]

        def place(notes: np.ndarray, off, on) -> None:
            for note in monophonic_per_pitch(notes):
                begin, end = max(int(note["start"]), start), int(note["end"])
                if end <= start or begin >= stop:
                    continue
                if end < stop:
                    frames[end - start].append(off(note["pitch"]))
                frames[begin - start].append(on(note["pitch"]))

        for part, notes in enumerate(backing):
            place(notes, lambda q, k=part: self.off(k, q), lambda q, k=part: self.on(k, q))
        place(player, self.player_off, self.player_on)
        return np.concatenate([np.sort(np.unique(f)) for f in frames]).astype(np.int16)

    def decode(self, tokens: np.ndarray, velocity: int = 80) -> tuple[np.ndarray, list[np.ndarray]]:
        """Tokens -> (player notes, [backing notes per part]) on the grid (steps). A note still
        sounding at the end is closed there; an off with no note is ignored."""
        step = -1
        open_notes: dict[tuple[int, int], int] = {}  # (part, pitch) -> start; part -1 = player
        found: dict[int, list[tuple[int, int, int]]] = {p: [] for p in range(-1, self.parts)}
        for token in np.asarray(tokens):
            kind, part, value = self.describe(token)
            if kind == STEP:
                step += 1
                continue
            at = max(step, 0)
            key = (part, value)
            if kind in (OFF, PLAYER_OFF):
                if key in open_notes:
                    found[part].append((open_notes.pop(key), at, value))
            else:
                if key in open_notes:  # a new onset of a sounding pitch ends the old note
                    found[part].append((open_notes.pop(key), at, value))
                open_notes[key] = at
        end = max(step, 0) + 1
        for (part, pitch), start in open_notes.items():
            found[part].append((start, end, pitch))

        def as_notes(items: list[tuple[int, int, int]]) -> np.ndarray:
            # A note ended on the step it started (an off in its own frame) lasts one step.
            return make_grid_notes(((a, max(b, a + 1), p) for a, b, p in sorted(items)), velocity)

        return as_notes(found[-1]), [as_notes(found[p]) for p in range(self.parts)]


def harmony_intervals(codec: PartsCodec, sequences: Iterable[np.ndarray]) -> list[float]:
    """How much likelier than chance each interval is between the player's note on a beat and a
    backing note sounding with it, learnt from `sequences` (a corpus split): log(12 x P(the
    interval (player - backing) mod 12)), on beats where the player sounds one note. Positive for
    what the corpus sounds together (unisons, thirds, fifths, sixths in a chorale), negative for
    what it avoids. The plugin's harmony knob leans the backing's choices on it."""
    counts = np.ones(12)  # add-one: an interval never seen is unlikely, not impossible
    for sequence in sequences:
        player, backing = codec.decode(sequence)
        steps = int(max((int(n["end"].max()) for n in (player, *backing) if len(n)), default=0))
        for beat in range(0, steps, codec.steps_per_quarter):
            melody = player[(player["start"] <= beat) & (player["end"] > beat)]
            if len(melody) != 1:
                continue
            for notes in backing:
                under = notes[(notes["start"] <= beat) & (notes["end"] > beat)]
                np.add.at(counts, (int(melody["pitch"][0]) - under["pitch"].astype(int)) % 12, 1)
    return [round(float(x), 3) for x in np.log(12 * counts / counts.sum())]


def part_voices(codec: PartsCodec, sequences: Iterable[np.ndarray],
                share: float = 0.99) -> list[int]:
    """How many notes each backing part sounds at once in `sequences` (a corpus split): the
    count that covers `share` of the steps on which it sounds (a chorale's voice: 1; chords: 3
    or 4). The plugin holds each part to it: a voice ends its note before it starts another."""
    histograms = np.zeros((codec.parts, 129), dtype=np.int64)
    for sequence in sequences:
        _, backing = codec.decode(sequence)
        for part, notes in enumerate(backing):
            if not len(notes):
                continue
            sounding = np.zeros(int(notes["end"].max()) + 1, dtype=np.int64)
            np.add.at(sounding, notes["start"].astype(np.int64), 1)
            np.add.at(sounding, notes["end"].astype(np.int64), -1)
            histograms[part] += np.bincount(np.cumsum(sounding), minlength=129)[:129]
    voices = []
    for counts in histograms[:, 1:]:
        covered = np.cumsum(counts) / max(counts.sum(), 1)
        voices.append(int(np.searchsorted(covered, share) + 1) if counts.sum() else 1)
    return voices


def monophonic_per_pitch(notes: np.ndarray) -> np.ndarray:
    """Notes of one part with no two of one pitch overlapping: an onset of a sounding pitch
    ends the earlier note there (as a MIDI note-on of a sounding key does)."""
    notes = np.sort(notes, order=["pitch", "start"]).copy()
    if len(notes) > 1:
        same = notes["pitch"][1:] == notes["pitch"][:-1]
        overlap = same & (notes["end"][:-1] > notes["start"][1:])
        notes["end"][:-1][overlap] = notes["start"][1:][overlap]
        notes = notes[notes["end"] > notes["start"]]
    return notes
