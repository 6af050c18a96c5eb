"""MIDI files in and out: tempo maps, tracks, channels, drums, and files that are broken."""

from __future__ import annotations

import mido
import numpy as np
import pytest

from cadenza.errors import MidiFileError
from cadenza.midi import load_notes, read_midi, write_midi
from cadenza.notes import DRUM_CHANNEL, make_notes


def test_write_then_read_gives_the_same_notes(tmp_path):
    notes = make_notes(
        [0.0, 0.5, 0.5, 2.0], [1.0, 0.75, 3.0, 2.25], [60, 64, 67, 72], [90, 40, 127, 1]
    )
    back = load_notes(write_midi(notes, tmp_path / "n.mid"))
    np.testing.assert_allclose(back["start"], notes["start"], atol=1e-9)
    np.testing.assert_allclose(back["end"], notes["end"], atol=1e-9)
    assert back["pitch"].tolist() == notes["pitch"].tolist()
    assert back["velocity"].tolist() == notes["velocity"].tolist()


def test_tempo_changes_in_a_separate_track_apply_to_all_tracks_and_parts_stay_apart(tmp_path):
    mid = mido.MidiFile(type=1, ticks_per_beat=480)
    mid.tracks.append(
        mido.MidiTrack(
            [
                mido.MetaMessage("set_tempo", tempo=500_000, time=0),  # 120 bpm
                mido.MetaMessage("set_tempo", tempo=1_000_000, time=960),
            ]
        )
    )  # 60 bpm after 2 beats
    mid.tracks.append(
        mido.MidiTrack(
            [
                mido.Message("note_on", note=60, velocity=80, time=0),
                mido.Message("note_off", note=60, time=960),  # 1.0 s
                mido.Message("note_on", note=62, velocity=80, channel=3, time=0),
                mido.Message("note_off", note=62, channel=3, time=480),
            ]
        )
    )  # 1 beat at 60 bpm
    mid.save(tmp_path / "tempo.mid")
    notes = load_notes(tmp_path / "tempo.mid")
    assert notes[["start", "end", "pitch", "channel"]].tolist() == [
        (0.0, 1.0, 60, 0),
        (1.0, 2.0, 62, 1),  # channel 3 of the same track: a part of its own
    ]


def test_drums_are_left_out_unless_asked_for(tmp_path):
    notes = make_notes([0, 0], [1, 1], [36, 60], [100, 100], channel=[DRUM_CHANNEL, 0])
    path = write_midi(notes, tmp_path / "drums.mid")
    assert load_notes(path)["pitch"].tolist() == [60]
    assert sorted(load_notes(path, drums=True)["pitch"].tolist()) == [36, 60]


def test_velocity_zero_ends_a_note_orphan_offs_and_unended_notes_are_dropped(tmp_path):
    mid = mido.MidiFile(type=0, ticks_per_beat=100)
    mid.tracks.append(
        mido.MidiTrack(
            [
                mido.Message("note_off", note=50, time=0),
                mido.Message("note_on", note=60, velocity=70, time=0),
                mido.Message("note_on", note=62, velocity=70, time=0),
                mido.Message("note_off", note=62, time=0),  # zero length: dropped
                mido.Message("note_on", note=60, velocity=0, time=100),
            ]
        )
    )
    mid.save(tmp_path / "z.mid")
    assert load_notes(tmp_path / "z.mid")[["pitch", "end"]].tolist() == [(60, 0.5)]


@pytest.mark.parametrize(
    "content, problem",
    [
        (None, "no such file"),
        (b"", "empty file"),
        (b"hello, this is text", "not a MIDI file"),
        (b"MThd\x00\x00\x00\x06\x00\x01\x00\x02\x01\xe0MTrk\x00\x00\x01\x00\x00\x90", "truncated"),
    ],
)
def test_broken_files_raise_one_error_naming_the_file(tmp_path, content, problem):
    path = tmp_path / "broken.mid"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(MidiFileError) as error:
        read_midi(path)
    assert str(path) in str(error.value) and problem in str(error.value)
    assert "\n" not in str(error.value)


def test_truncated_real_file(chorale_midi, tmp_path):
    data = chorale_midi.read_bytes()
    path = tmp_path / "cut.mid"
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(MidiFileError, match="cut.mid"):
        read_midi(path)
