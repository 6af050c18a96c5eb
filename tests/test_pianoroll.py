"""Quantisation onto the bar grid, over real MIDI files (music21 chorales, bundled primers)."""

from __future__ import annotations

from pathlib import Path

import mido
import numpy as np
import pytest

from cadenza.errors import MidiFileError
from cadenza.midi import load_notes
from cadenza.notes import make_notes
from cadenza.pianoroll import (
    GRID_NOTE_DTYPE,
    Grid,
    GridPiece,
    Meter,
    fitted_meter,
    from_roll,
    quantize,
    read_grid_midi,
    read_meter,
    segment_starts,
    to_roll,
    to_seconds,
)

PRIMERS = Path(__file__).parent.parent / "cadenza" / "data" / "primers"


def test_a_chorale_lands_on_the_sixteenth_grid(chorale_midi):
    """music21 writes scores exactly: every note, at the file's own tempo, is on a 16th."""
    data = chorale_midi.read_bytes()
    meter = read_meter(data)
    notes = load_notes(chorale_midi)
    quarters = meter.quarters(notes["start"]) * 4
    assert np.abs(quarters - np.round(quarters)).max() < 1e-6
    grid_notes = quantize(notes, meter)
    assert np.array_equal(grid_notes["start"], np.sort(np.round(quarters).astype(np.int64)))


def test_the_tempo_map_is_followed(tmp_path):
    """A file that slows down mid-way: one note a quarter note, in either tempo, is one note
    every 4 steps."""
    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(120), time=0))
    for i in range(8):
        if i == 4:
            track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(75), time=0))
        track.append(mido.Message("note_on", note=60 + i, velocity=80, time=0))
        track.append(mido.Message("note_off", note=60 + i, velocity=0, time=480))
    path = tmp_path / "ritardando.mid"
    mid.save(path)
    piece = read_grid_midi(path.read_bytes(), path)
    assert piece.notes["start"].tolist() == [0, 4, 8, 12, 16, 20, 24, 28]
    assert piece.notes["end"].tolist() == [4, 8, 12, 16, 20, 24, 28, 32]


@pytest.mark.parametrize(("name", "bpm"), [("chorale", 96.0), ("folk", 208.0)])
def test_a_file_off_its_own_grid_is_read_at_the_tempo_that_fits(name, bpm):
    """The bundled primers were written at a nominal 120 bpm; bwv66.6 moves at 96 and
    Soldier's Joy at half = 104 (music21's metronome marks): the notes say so."""
    piece = read_grid_midi((PRIMERS / f"{name}.mid").read_bytes())
    assert piece.bpm == pytest.approx(bpm, abs=0.01)
    assert np.all(piece.notes["start"] % 2 == 0)  # on eighths: nothing on a stray sixteenth


def test_a_file_on_its_own_grid_keeps_its_meter(chorale_midi):
    data = chorale_midi.read_bytes()
    meter = read_meter(data)
    assert fitted_meter(load_notes(chorale_midi), meter) is meter


def test_a_free_performance_keeps_its_meter():
    rng = np.random.default_rng(0)
    starts = np.sort(rng.uniform(0, 20, 60))
    notes = make_notes(starts, starts + 0.2, 60, 80)
    meter = Meter.constant(120)
    assert fitted_meter(notes, meter) is meter


def test_time_signatures_give_the_bar_lines(tmp_path):
    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.MetaMessage("time_signature", numerator=3, denominator=4, time=0))
    track.append(mido.Message("note_on", note=60, velocity=80, time=0))
    track.append(mido.Message("note_off", note=60, velocity=0, time=480 * 6))
    track.append(mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0))
    track.append(mido.Message("note_on", note=62, velocity=80, time=0))
    track.append(mido.Message("note_off", note=62, velocity=0, time=480 * 8))
    path = tmp_path / "three-then-four.mid"
    mid.save(path)
    piece = read_grid_midi(path.read_bytes(), path)
    assert piece.bar_starts.tolist() == [0, 12, 24, 40]
    assert piece.bar_steps.tolist() == [12, 12, 16, 16]


def test_a_pickup_moves_the_bar_lines(chorale_midi):
    """bwv1.6 opens with a one-beat pickup that music21's MIDI leaves unmarked."""
    plain = read_grid_midi(chorale_midi.read_bytes())
    picked = read_grid_midi(chorale_midi.read_bytes(), pickup=1.0)
    assert plain.bar_starts[0] == 0
    assert picked.bar_starts[:3].tolist() == [4, 20, 36]


def test_music21_pickup_is_read_from_the_score():
    from cadenza.corpus.sources import music21_pickup, resolve_source

    first = resolve_source("music21:bach")[0]  # bach/bwv1.6
    assert music21_pickup(first) == 1.0


def test_segments_need_whole_bars_of_the_grids_meter():
    piece = GridPiece(
        np.zeros(0, GRID_NOTE_DTYPE),
        np.array([0, 16, 32, 44, 60, 76]),
        np.array([16, 16, 12, 16, 16, 16]),
    )
    assert segment_starts(piece, Grid()).tolist() == [0, 44, 60]


def _segment(name: str) -> tuple[np.ndarray, np.ndarray, int]:
    piece = read_grid_midi((PRIMERS / f"{name}.mid").read_bytes())
    start = int(segment_starts(piece, Grid())[0])
    notes = piece.notes[
        (piece.notes["start"] >= start) & (piece.notes["start"] < start + 32)
    ].copy()
    notes["end"] = np.minimum(notes["end"], start + 32)
    return piece.notes, notes, start


@pytest.mark.parametrize("name", ["folk", "piano"])
def test_a_segment_roll_gives_its_notes_back(name):
    everything, notes, start = _segment(name)
    back = from_roll(to_roll(everything, start, Grid()), Grid(), start)
    assert back[["start", "end", "pitch"]].tolist() == notes[["start", "end", "pitch"]].tolist()
    assert np.abs(back["velocity"] - notes["velocity"]).max() <= 1  # float precision


def test_a_chorale_roll_keeps_every_onset():
    """Two voices on one pitch (a unison) share the roll's pitch row; every attack stays."""
    everything, notes, start = _segment("chorale")
    back = from_roll(to_roll(everything, start, Grid()), Grid(), start)
    assert set(back[["start", "pitch"]].tolist()) == set(notes[["start", "pitch"]].tolist())


def test_a_note_sounding_into_a_segment_is_a_hold_not_an_onset():
    notes = np.array([(-4, 6, 60, 100)], GRID_NOTE_DTYPE)
    roll = to_roll(notes, 0, Grid())
    assert roll[:, 0].sum() == 0
    assert roll[:6, 1, 60 - 21].tolist() == [1.0] * 6
    assert len(from_roll(roll, Grid())) == 0  # a hold with no onset is not a note


def test_the_live_tempo_sets_the_grid():
    """The engine quantises with its own tempo: a phrase played at 90 bpm is, on a 90 bpm grid,
    the phrase on a 120 bpm grid played at 120."""
    grid_notes = read_grid_midi((PRIMERS / "folk.mid").read_bytes()).notes
    at_90, at_120 = to_seconds(grid_notes, 90, Grid()), to_seconds(grid_notes, 120, Grid())
    assert at_90["start"][1] == pytest.approx(grid_notes["start"][1] / 6)  # a 16th is 1/6 s
    assert np.array_equal(quantize(at_90, Meter.constant(90)), grid_notes)
    assert np.array_equal(quantize(at_120, Meter.constant(120)), grid_notes)


def test_a_broken_file_is_one_line_naming_it():
    with pytest.raises(MidiFileError, match="broken.mid"):
        read_meter(b"MThd\x00\x00\x00\x06\x00\x01", "broken.mid")
