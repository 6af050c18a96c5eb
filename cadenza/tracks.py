"""Files that drop into a DAW: named parts on a bar grid, written as a type-1 MIDI file.

A DAW reads a type-1 file's first track as its conductor (tempo, time signature) and each
other track as a clip on a track of its own, named by the track's name, playing the track's
program on its channel. Every track ends at the same tick (`span`), so a clip is exactly the
piece's length: 8 bars asked for is an 8-bar clip, whatever its last note does.

One tempo and one time signature per file (a primer's first ones): a DAW project has one
tempo map, and a generated continuation has no tempo changes of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mido
import numpy as np

from cadenza.atomic import atomic_path
from cadenza.errors import CadenzaError
from cadenza.midi import note_messages
from cadenza.notes import DRUM_CHANNEL, empty_notes, make_notes, sort_notes
from cadenza.parts import monophonic_per_pitch
from cadenza.pianoroll import Meter, quantize, read_meter

TICKS_PER_BEAT = 480
EPSILON = 1e-6  # seconds: a note end this close to a bar line is on it
MELODIC_CHANNELS = [c for c in range(16) if c != DRUM_CHANNEL]  # a part per channel


@dataclass(frozen=True)
class BarGrid:
    """A constant tempo (quarter notes a minute) and time signature, bar 1 at 0 s."""

    bpm: float = 120.0
    beats: int = 4  # the time signature's numerator
    beat_unit: int = 4  # ... and denominator (a power of two)

    @property
    def beat_seconds(self) -> float:
        return 60.0 / self.bpm * 4 / self.beat_unit

    @property
    def bar_seconds(self) -> float:
        return self.beats * self.beat_seconds

    def bar_line_after(self, seconds: float) -> float:
        """The first bar line at or after `seconds`."""
        return float(np.ceil(seconds / self.bar_seconds - EPSILON)) * self.bar_seconds

    def unit_seconds(self, unit: str) -> float:
        """Seconds of a --quantize unit: a 16th, an 8th, or the time signature's beat."""
        quarter = 60.0 / self.bpm
        return {"16th": quarter / 4, "8th": quarter / 2, "beat": self.beat_seconds}[unit]

    def __str__(self) -> str:
        return f"{self.bpm:g} bpm {self.beats}/{self.beat_unit}"


def bar_grid_of(data: bytes, name: str | Path, bpm: float | None = None) -> BarGrid:
    """A MIDI file's first tempo (or `bpm`, where the notes were placed at another) and
    first time signature; 120 bpm and 4/4 where it has none."""
    meter = read_meter(data, name)
    beats, unit = (int(x) for x in meter.signatures[0])
    return BarGrid(bpm or round(60.0 / float(meter.seconds_per_quarter[0]), 6), beats, unit)


@dataclass
class Part:
    """One track: its notes (seconds), name and General MIDI program. `generated`: made by
    the model (what --quantize snaps), not the primer's."""

    name: str
    notes: np.ndarray
    generated: bool = True
    program: int = 0


def quantized(notes: np.ndarray, grid: BarGrid, unit: str) -> np.ndarray:
    """Starts and ends snapped to the nearest `unit` of the grid; a note keeps one unit at
    least (pianoroll.quantize, on a constant meter)."""
    if len(notes) == 0:
        return notes
    per_quarter = 60.0 / grid.bpm / grid.unit_seconds(unit)  # units a quarter note
    steps = quantize(notes, Meter.constant(grid.bpm, grid.beats, grid.beat_unit), per_quarter)
    # Notes of one pitch snapped together would overlap: a DAW cuts one at the next's start.
    steps = monophonic_per_pitch(steps)
    unit_seconds = grid.unit_seconds(unit)
    return make_notes(steps["start"] * unit_seconds, steps["end"] * unit_seconds,
                      steps["pitch"], steps["velocity"], int(notes["channel"][0]))


def trimmed(notes: np.ndarray, until: float) -> np.ndarray:
    """The notes that start before `until`, ended by it."""
    kept = notes[notes["start"] < until - EPSILON].copy()
    kept["end"] = np.minimum(kept["end"], until)
    return kept


def with_channels(parts: list[Part]) -> list[np.ndarray]:
    """Each part's notes on its own channel (in order, skipping the drums' channel 10)."""
    if len(parts) > len(MELODIC_CHANNELS):
        raise CadenzaError(f"{len(parts)} parts need a channel each; a MIDI file has "
                           f"{len(MELODIC_CHANNELS)} besides the drums'")
    out = []
    for part, channel in zip(parts, MELODIC_CHANNELS, strict=False):
        notes = part.notes.copy()
        notes["channel"] = channel
        out.append(notes)
    return out


def all_notes(parts: list[Part]) -> np.ndarray:
    """Every part's notes on its channel, as one note array (for --wav and --png)."""
    notes = with_channels(parts)
    return sort_notes(np.concatenate(notes)) if notes else empty_notes()


def parts_to_midi(parts: list[Part], grid: BarGrid, span: float) -> mido.MidiFile:
    """A type-1 file: the conductor track, then a named track per part with its program on
    its channel; every track ends at `span` seconds."""
    seconds_per_tick = 60.0 / grid.bpm / TICKS_PER_BEAT
    end = round(span / seconds_per_tick)
    conductor = mido.MidiTrack([
        mido.MetaMessage("track_name", name="tempo", time=0),  # as `live --record` names it
        mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(grid.bpm), time=0),
        mido.MetaMessage("time_signature", numerator=grid.beats, denominator=grid.beat_unit,
                         time=0),
        mido.MetaMessage("end_of_track", time=end),
    ])
    midi = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT, tracks=[conductor])
    for part, notes in zip(parts, with_channels(parts), strict=True):
        channel = MELODIC_CHANNELS[len(midi.tracks) - 1]
        track = mido.MidiTrack([
            mido.MetaMessage("track_name", name=part.name, time=0),
            mido.Message("program_change", channel=channel, program=part.program, time=0),
        ])
        last = 0
        for tick, message in note_messages(notes, notes["channel"], seconds_per_tick):
            tick = min(tick, end)
            track.append(message.copy(time=tick - last))
            last = tick
        track.append(mido.MetaMessage("end_of_track", time=end - last))
        midi.tracks.append(track)
    return midi


def write_parts(parts: list[Part], grid: BarGrid, span: float, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        parts_to_midi(parts, grid, span).save(tmp)
    return path
