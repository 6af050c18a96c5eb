"""Continue a primer with a performance-event generator: the job behind `cadenza generate`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cadenza.corpus.parts import parts_of_midi
from cadenza.errors import CadenzaError, MidiFileError
from cadenza.events import PERFORMANCE, PerformanceCodec
from cadenza.pianoroll import GRID_NOTE_DTYPE, Grid, read_grid_midi, to_seconds
from cadenza.plugins.backing import BackingTransformer, accompany
from cadenza.plugins.base import EventGenerator
from cadenza.plugins.vae import SegmentVAE

EVENTS_PER_SECOND_LIMIT = 200  # a model that never advances time must still stop


@dataclass
class Continuation:
    notes: np.ndarray  # the primer followed by its continuation
    primer_seconds: float  # where the continuation starts
    events: np.ndarray  # the generated events only
    bpm: float = 120.0  # the tempo the notes were placed at (vae, backing: on its grid)


def continue_primer(
    generator: EventGenerator, primer: np.ndarray, seconds: float, *, start: float | None = None,
    conditions: dict | None = None,
) -> Continuation:
    """Prime with the primer's events, sample until `seconds` of music have been generated.
    `start`: where the continuation begins (a bar line after the primer's end: the model
    hears the rest until then), else at the primer's last note-off. `conditions` go to
    `prime` (the tempo and bar position a melody-rnn lays its grid by)."""
    codec = generator.codec
    primer_events = codec.encode(primer)
    if start is not None:
        rest = int(round(start * codec.steps_per_second)) - int(
            round(codec.seconds(primer_events) * codec.steps_per_second))
        primer_events = np.concatenate([primer_events, rest_events(codec, rest)])
    generator.prime(primer_events, conditions)
    target_steps = int(round(seconds * codec.steps_per_second))
    events: list[int] = []
    steps = 0
    budget = int(seconds * EVENTS_PER_SECOND_LIMIT) + 100
    while steps < target_steps and len(events) < budget:
        event = generator.step()
        events.append(event)
        if codec.time_shift < event <= codec.velocity:
            steps += event - codec.time_shift
    generated = np.array(events, dtype=np.int16)
    notes = codec.decode(np.concatenate([primer_events, generated]))
    return Continuation(notes=notes, primer_seconds=codec.seconds(primer_events), events=generated)


def rest_events(codec: PerformanceCodec, steps: int) -> np.ndarray:
    """TIME_SHIFT events making `steps` of silence (none for 0 or fewer)."""
    full, remainder = divmod(max(steps, 0), codec.max_shift_steps)
    shifts = [codec.max_shift_steps] * full + ([remainder] if remainder else [])
    return np.array([codec.time_shift + s for s in shifts], dtype=np.int16)


def vae_phrases(
    generator: SegmentVAE,
    mode: str,
    primer: str | None,
    between: list[str] | None,
    steps: int,
    seconds: float,
    *,
    bpm: float | None = None,
) -> Continuation:
    """The `vae` plugin's modes on files (cadenza.plugins.vae). The primer is read onto its
    own bar grid (its tempo map and time signatures); the result is written on the grid at
    the primer's first tempo (without a primer: `bpm`, else the bundle's default). `between`
    names two MIDI files or `style:NAME`s; for `continue` the result is the primer, then what
    follows."""
    grid, piece, bpm = generator.grid, None, bpm or generator.default_bpm
    if primer:
        data = Path(primer).read_bytes()
        piece = read_grid_midi(data, primer, grid.steps_per_quarter)
        bpm = piece.bpm
    endpoints = None
    if mode == "interpolate":
        if not between or len(between) != 2:
            raise CadenzaError("--between: interpolate needs two MIDI files or style:NAMEs")
        endpoints = tuple(_vae_code(generator, item) for item in between)
    segment_seconds = grid.segment_steps * grid.step_seconds(bpm)
    count = max(1, int(np.ceil(seconds / segment_seconds - 1e-9)))
    rolls = generator.run_mode(mode, piece, segments=count, endpoints=endpoints, steps=steps)
    if mode != "continue":
        notes = generator.rolls_to_notes(rolls, bpm)
        return Continuation(notes, 0.0, generator.codec.encode(notes), bpm)
    last = generator.last_segment_start(piece) + grid.segment_steps
    before = piece.notes[piece.notes["start"] < last].copy()
    before["end"] = np.minimum(before["end"], last)
    primer_notes = to_seconds(before.astype(GRID_NOTE_DTYPE), bpm, grid)
    after = generator.rolls_to_notes(rolls, bpm, origin=last * grid.step_seconds(bpm))
    notes = np.concatenate([primer_notes, after])
    notes = notes[np.argsort(notes["start"], kind="stable")]
    return Continuation(notes, last * grid.step_seconds(bpm), generator.codec.encode(after), bpm)


def _vae_code(generator: SegmentVAE, item: str) -> np.ndarray:
    """The code of `style:NAME` (its mean code) or of a MIDI file's first segment."""
    if item.startswith("style:"):
        return generator.style_code(item.removeprefix("style:"))
    path = Path(item)
    if not path.is_file():
        raise MidiFileError(path, "no such file (give a MIDI file or style:NAME)")
    piece = read_grid_midi(path.read_bytes(), path, generator.grid.steps_per_quarter)
    if len(piece.notes) == 0:
        raise MidiFileError(path, "has no notes to encode")
    return generator.encode(generator.segments_of(piece)[0])[0]


def backing_parts(generator: BackingTransformer, primer: str | None) -> Continuation:
    """The `backing` plugin on a file: the primer's highest part is the player's (a melody
    alone is one part), and the backing parts are played under it step by step, as live.
    The result holds the player's part on channel 1 and backing part k on channel k + 2, at
    the primer's tempo; `events` are the backing's notes as performance events."""
    if not primer:
        raise CadenzaError("--primer: the backing plugin needs a MIDI file with a melody to back")
    path = Path(primer)
    if not path.is_file():
        raise MidiFileError(path, "no such file")
    codec = generator.parts
    piece = parts_of_midi(path.read_bytes(), str(path), codec.steps_per_quarter)
    if not piece.parts:
        raise MidiFileError(path, "has no notes to back")
    positions = codec.positions_of(piece.steps, piece.bar_starts, piece.bar_steps)
    player = piece.parts[0]
    backing = accompany(generator, player, positions)
    grid = Grid(steps_per_quarter=codec.steps_per_quarter)
    voices = []
    for channel, notes in enumerate([player, *backing]):
        seconds = to_seconds(notes, piece.bpm, grid)
        seconds["channel"] = channel
        voices.append(seconds)
    notes = np.concatenate(voices)
    notes = notes[np.lexsort((notes["pitch"], notes["start"]))]
    return Continuation(notes, 0.0, PERFORMANCE.encode(np.concatenate(voices[1:])), piece.bpm)
