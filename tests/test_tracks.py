"""Type-1 files for a DAW: the bar grid read from real files (music21's, written by others),
quantisation to it, and the conductor and part tracks a DAW reads."""

from __future__ import annotations

from pathlib import Path

import mido
import music21
import numpy as np
import pytest

from cadenza.errors import CadenzaError
from cadenza.notes import make_notes
from cadenza.tracks import (
    MELODIC_CHANNELS,
    TICKS_PER_BEAT,
    BarGrid,
    Part,
    bar_grid_of,
    parts_to_midi,
    quantized,
    trimmed,
)

MUSIC21 = Path(music21.__file__).parent


@pytest.mark.parametrize(("name", "kind", "bpm", "signature"), [
    ("midi/testPrimitive/test07.mid", 0, 180.0, (4, 4)),  # type 0
    ("midi/testPrimitive/test14.mid", 1, 100.0, (6, 8)),  # type 1, tempo in track 1
    ("midi/testPrimitive/test17.mid", 1, 120.0, (3, 4)),  # two tempos at tick 0
    ("omr/k525short.mid", 1, 100.0, (4, 4)),  # 120 then 100 at tick 0: 100 plays
])
def test_the_grid_is_the_files_first_tempo_and_time_signature(name, kind, bpm, signature):
    path = MUSIC21 / name
    mid = mido.MidiFile(path)
    assert mid.type == kind
    grid = bar_grid_of(path.read_bytes(), path)
    assert grid.bpm == pytest.approx(bpm, abs=0.01)
    assert (grid.beats, grid.beat_unit) == signature
    # mido agrees on which tempo plays at tick 0: the last one there
    at_zero = [m.tempo for m in mido.merge_tracks(mid.tracks) if m.type == "set_tempo"
               and m.time == 0]
    assert mido.tempo2bpm(at_zero[-1]) == pytest.approx(grid.bpm, abs=0.01)


def test_bar_lines_and_units_follow_the_time_signature():
    grid = BarGrid(90.0, 3, 4)
    assert grid.bar_seconds == pytest.approx(2.0)
    assert grid.bar_line_after(0.0) == 0.0
    assert grid.bar_line_after(2.0) == pytest.approx(2.0)
    assert grid.bar_line_after(2.01) == pytest.approx(4.0)
    assert grid.unit_seconds("16th") == pytest.approx(1 / 6)
    assert grid.unit_seconds("beat") == pytest.approx(2 / 3)
    assert BarGrid(120.0, 6, 8).unit_seconds("beat") == pytest.approx(0.25)  # an eighth


@pytest.mark.parametrize(("unit", "step"), [("16th", 1 / 6), ("8th", 1 / 3), ("beat", 2 / 3)])
def test_quantize_snaps_starts_and_ends_and_keeps_a_note_one_unit_long(unit, step):
    grid = BarGrid(90.0, 3, 4)
    notes = make_notes([0.02, 0.41, 1.37], [0.05, 0.93, 2.9], [60, 62, 64], 80, 3)
    out = quantized(notes, grid, unit)
    for column in ("start", "end"):
        units = out[column] / step
        assert np.allclose(units, np.round(units))
    assert np.all(out["end"] - out["start"] >= step - 1e-9)
    assert np.all(np.abs(out["start"] - notes["start"]) <= step / 2 + 1e-9)
    assert set(out["channel"]) == {3}


def test_trimmed_ends_every_note_by_the_end():
    notes = make_notes([0.0, 1.5, 2.0], [3.0, 1.9, 2.5], [60, 61, 62], 80)
    out = trimmed(notes, 2.0)
    assert out["pitch"].tolist() == [60, 61]
    assert out["end"].tolist() == [2.0, 1.9]


def test_a_type_1_file_has_a_conductor_and_a_named_track_per_part(tmp_path):
    grid = BarGrid(90.0, 3, 4)
    parts = [Part("primer", make_notes([0.0], [0.5], [60], 90), generated=False),
             Part("answer", make_notes([2.0, 3.0], [3.0, 4.5], [64, 67], 70), program=40)]
    path = tmp_path / "two.mid"
    parts_to_midi(parts, grid, 4.0).save(path)
    mid = mido.MidiFile(path)
    assert mid.type == 1 and len(mid.tracks) == 3
    conductor = mid.tracks[0]
    tempo = next(m for m in conductor if m.type == "set_tempo")
    signature = next(m for m in conductor if m.type == "time_signature")
    assert mido.tempo2bpm(tempo.tempo) == pytest.approx(90.0, abs=1e-3)
    assert (signature.numerator, signature.denominator) == (3, 4)
    assert not [m for m in conductor if m.type == "note_on"]
    two_bars = 2 * 3 * TICKS_PER_BEAT
    for track, name, channel, program in [(mid.tracks[1], "primer", 0, 0),
                                          (mid.tracks[2], "answer", 1, 40)]:
        assert track.name == name
        changes = [m for m in track if m.type == "program_change"]
        assert [(m.channel, m.program) for m in changes] == [(channel, program)]
        assert {m.channel for m in track if m.type in ("note_on", "note_off")} == {channel}
    for track in mid.tracks:
        assert sum(m.time for m in track) == two_bars  # every track ends at the span
    ticks = np.cumsum([m.time for m in mid.tracks[2]])
    ons = [t for t, m in zip(ticks, mid.tracks[2], strict=True) if m.type == "note_on"]
    assert ons == [TICKS_PER_BEAT * 3, TICKS_PER_BEAT * 9 // 2]  # 2 s and 3 s at 90 bpm


def test_channels_skip_the_drums_and_run_out_at_fifteen():
    parts = [Part(f"p{k}", make_notes([0.0], [1.0], [60], 80)) for k in range(15)]
    mid = parts_to_midi(parts, BarGrid(), 2.0)
    channels = [next(m.channel for m in t if m.type == "program_change") for t in mid.tracks[1:]]
    assert channels == MELODIC_CHANNELS and 9 not in channels
    with pytest.raises(CadenzaError, match="16 parts"):
        parts_to_midi([*parts, parts[0]], BarGrid(), 2.0)


def test_quantize_never_leaves_two_notes_of_one_pitch_overlapping():
    grid = BarGrid(90.0, 3, 4)  # a 16th is 1/6 s
    notes = make_notes([0.0, 0.02, 0.2, 1.0], [0.5, 0.1, 0.4, 1.2], [60, 60, 60, 62], 80)
    out = quantized(notes, grid, "16th")
    sixths = np.round(np.stack([out["start"], out["end"]], axis=1) * 6).astype(int)
    # 0.0 and 0.02 snap onto one start: one note; the next 60 starts a 16th later and ends it
    assert sixths.tolist() == [[0, 1], [1, 2], [6, 7]]
    assert out["pitch"].tolist() == [60, 60, 62]
