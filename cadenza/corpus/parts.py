"""Pieces as parts on the grid, for the backing model (`corpus prepare --representation parts`).

A piece's parts are its MIDI parts (one per track and channel; music21 writes one per voice),
ordered by mean pitch, highest first: the highest is the player's (a chorale's soprano), the
next ones the backing parts (alto, tenor, bass). Pieces are put on the grid by their tempo map
and time signatures as the VAE's are (`cadenza.pianoroll`); music21 scores with their pickup
from the score.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from cadenza.corpus.common import TRANSPOSITIONS, PieceResult, skip_reason
from cadenza.corpus.sources import Piece, music21_data
from cadenza.midi import parse_midi_bytes, performed_notes
from cadenza.parts import PartsCodec
from cadenza.pianoroll import fitted_meter, grid_piece, make_grid_notes, quantize, read_meter

PARTS = PartsCodec()
# Bass and chord comping under a melody: the chorales' harmony re-voiced (see bass_and_chords).
BASS_CHORDS = PartsCodec(parts=2, names=("bass", "chords"))
ARRANGEMENTS = {"satb": PARTS, "bass-chords": BASS_CHORDS}
CHORD_LOW = 55  # the comping's register: each pitch class once, G3..F#4 (close position)
EXCERPT_BARS = 8  # about 512 tokens of chorale
HOP_BARS = 4


@dataclass
class PartsPiece:
    """A piece's parts on the grid (steps), highest first, and its bars."""

    parts: list[np.ndarray]  # GRID_NOTE_DTYPE each
    bar_starts: np.ndarray
    bar_steps: np.ndarray
    bpm: float  # the tempo of its grid at the start

    @property
    def steps(self) -> int:
        return max((int(p["end"].max()) for p in self.parts if len(p)), default=0) + 1


def read_parts(piece: Piece, steps_per_quarter: int = 4) -> PartsPiece:
    """A piece's parts on the grid, by its tempo map and time signatures."""
    if piece.kind == "midi":
        data, pickup = piece.path.read_bytes(), 0.0
    else:
        data, pickup = music21_data(piece)
    return parts_of_midi(data, piece.id, steps_per_quarter, pickup, fit_tempo=piece.kind == "midi")


def parts_of_midi(
    data: bytes,
    name: str,
    steps_per_quarter: int = 4,
    pickup: float = 0.0,
    fit_tempo: bool = True,
) -> PartsPiece:
    """MIDI file bytes as parts on the grid. `fit_tempo`: a file whose notes are off its own
    tempo's grid is read at the tempo that fits them (a score's tempo map is exact)."""
    notes = performed_notes(parse_midi_bytes(data, name))
    meter = read_meter(data, name)
    if fit_tempo and len(notes):
        meter = fitted_meter(notes, meter, steps_per_quarter)
    if pickup:
        meter = meter.with_pickup(pickup)
    whole = grid_piece(notes, meter, steps_per_quarter)
    parts = [
        quantize(notes[notes["channel"] == c], meter, steps_per_quarter)
        for c in np.unique(notes["channel"])
    ]
    parts.sort(key=lambda p: -float(p["pitch"].mean()))
    return PartsPiece(parts, whole.bar_starts, whole.bar_steps, whole.bpm)


def choose_parts(parts: list[np.ndarray], backing: int) -> list[np.ndarray]:
    """The player's part (the highest) and at most `backing` others, highest first. Of more,
    the lowest (the bass carries a backing) and others spread evenly by pitch between: a
    chorale's instruments doubling its voices, or a double choir, give four voices again."""
    player, rest = parts[:1], parts[1:]
    if len(rest) > backing:
        rest = [rest[int(i)] for i in np.round(np.linspace(0, len(rest) - 1, backing))]
    return player + rest


def bass_and_chords(parts: list[np.ndarray], steps_per_quarter: int) -> list[np.ndarray]:
    """A chorale's voices (highest first) as a melody, a bass and a chord part: the melody is the
    highest voice, the bass the lowest, the chords every pitch class the voices sound at each
    beat, voiced in close position from CHORD_LOW; a pitch common to the next beat's chord is
    held. A beat with one pitch class or none has no chord."""
    melody, bass = parts[0], parts[-1]
    steps = max((int(p["end"].max()) for p in parts if len(p)), default=0) + 1
    beats = np.arange(0, steps, steps_per_quarter)
    chords: list[set[int]] = []
    for beat in beats:
        classes = {int(n["pitch"]) % 12 for p in parts for n in p
                   if n["start"] <= beat < n["end"]}
        chords.append({CHORD_LOW + (pc - CHORD_LOW) % 12 for pc in classes}
                      if len(classes) > 1 else set())
    items: list[tuple[int, int, int]] = []
    started: dict[int, int] = {}
    for i, chord in enumerate([*chords, set()]):
        at = int(beats[i]) if i < len(beats) else steps
        for pitch in [q for q in started if q not in chord]:
            items.append((started.pop(pitch), at, pitch))
        for pitch in chord - started.keys():
            started[pitch] = at
    return [melody, bass, make_grid_notes(sorted(items), 80)]


def encode_parts(
    parts: list[np.ndarray],
    bar_starts: np.ndarray,
    bar_steps: np.ndarray,
    codec: PartsCodec = PARTS,
    *,
    augment: bool = False,
    withheld: int | None = None,
) -> list[np.ndarray]:
    """Token sequences of a piece: the piece itself, or with `augment` each transposition of
    -3..+3 semitones that stays in MIDI's range; the variant numbered `withheld` (if any) leaves
    the player's part out, so that the model also learns to play with no player."""
    shifts = TRANSPOSITIONS if augment else (0,)
    sequences = []
    for i, shift in enumerate(shifts):
        moved = [p.copy() for p in parts]
        for p in moved:
            p["pitch"] += shift
        if any(len(p) and (p["pitch"].min() < 0 or p["pitch"].max() > 127) for p in moved):
            continue
        player = moved[0][:0] if i == withheld else moved[0]
        if not augment:
            sequences.append(codec.encode(player, moved[1:], bar_starts, bar_steps))
            continue
        # Training excerpts of EXCERPT_BARS from every HOP_BARS-th bar line, each starting with
        # what sounds there: windows as long as an excerpt then start where the model knows
        # every sounding note, as live, instead of in the middle of notes it cannot see.
        starts = [0, *bar_starts[HOP_BARS::HOP_BARS].tolist()]
        for first in starts:
            ahead = bar_starts[bar_starts > first]
            stop = int(ahead[EXCERPT_BARS - 1]) if len(ahead) >= EXCERPT_BARS else None
            sequences.append(codec.encode(player, moved[1:], bar_starts, bar_steps, first, stop))
    return sequences


def encode_parts_piece(
    task: tuple[int, Piece, bool],
    arrangement: str = "satb",
) -> PieceResult:
    """In a worker, as `encode_piece` for events: (index, token arrays, None), or (index, None,
    why it was skipped)."""
    codec = ARRANGEMENTS[arrangement]
    index, piece, augment = task
    try:
        read = read_parts(piece, codec.steps_per_quarter)
        bar_starts, bar_steps = read.bar_starts, read.bar_steps
        if arrangement == "bass-chords":
            parts = choose_parts(read.parts, PARTS.parts)
            if len(parts) < 3:
                return index, None, f"{len(parts)} part(s): no harmony to re-voice"
            parts = bass_and_chords(parts, codec.steps_per_quarter)
        else:
            parts = choose_parts(read.parts, codec.parts)
        if len(parts) < 2:
            return index, None, f"{len(parts)} part(s): a backing needs a player's and another"
        # One transposition in seven without the player, chosen by the piece (stable).
        withheld = zlib.crc32(piece.id.encode()) % len(TRANSPOSITIONS) if augment else None
        return (
            index,
            encode_parts(parts, bar_starts, bar_steps, codec, augment=augment,
                         withheld=withheld),
            None,
        )
    except Exception as e:  # music21 raises anything from its parsers on odd scores
        return index, None, skip_reason(e)
