"""The live set as a MIDI file (cadenza.realtime.session_file): ticks through the tempo map,
named tracks, and every note ended in every version of the file."""

from __future__ import annotations

import io

import mido
import pytest

from cadenza.realtime.session_file import TICKS_PER_BEAT, SessionFile, TempoMap
from cadenza.realtime.session_record import take_path
from tests.realtime.helpers import sounding_after


def read(file: SessionFile, end: float) -> mido.MidiFile:
    """The file as written and read back by mido."""
    data = io.BytesIO()
    file.midi_file(end).save(file=data)
    data.seek(0)
    return mido.MidiFile(file=data)


def absolute(track: mido.MidiTrack) -> list[tuple[int, mido.Message]]:
    tick, out = 0, []
    for message in track:
        tick += message.time
        out.append((tick, message))
    return out


def test_ticks_follow_the_tempo_map():
    tempo = TempoMap(origin=100.0, bpm=120.0)
    assert tempo.tick(100.5) == TICKS_PER_BEAT  # a beat at 120 bpm
    assert tempo.tick(99.0) == 0  # nothing before the origin
    at = tempo.change(101.0, 60.0)
    assert at == 2 * TICKS_PER_BEAT
    assert tempo.tick(102.0) == 3 * TICKS_PER_BEAT  # one beat of a second after the change


def test_tracks_are_named_and_the_tempo_and_meter_are_written():
    file = SessionFile(["player", "answers"], origin=10.0, bpm=90.0, beats_per_bar=3)
    file.add(0, 10.0, [0x90, 60, 80])
    file.add(0, 10.5, [0x80, 60, 0])
    file.set_tempo(11.0, 100.0)
    midi = read(file, 12.0)
    assert midi.type == 1 and midi.ticks_per_beat == TICKS_PER_BEAT
    assert [t.name for t in midi.tracks] == ["tempo", "player", "answers"]
    meta = [m for m in midi.tracks[0] if m.is_meta]
    signature = next(m for m in meta if m.type == "time_signature")
    assert (signature.numerator, signature.denominator) == (3, 4)
    tempos = [round(mido.tempo2bpm(m.tempo), 3) for m in meta if m.type == "set_tempo"]
    assert tempos == [90.0, 100.0]
    notes = [(tick, m.type) for tick, m in absolute(midi.tracks[1]) if not m.is_meta]
    assert notes == [(0, "note_on"), (round(0.5 * 1.5 * TICKS_PER_BEAT), "note_off")]


def test_every_version_of_the_file_ends_every_note_and_lifts_the_pedal():
    file = SessionFile(["player", "answers"], origin=0.0, bpm=120.0, beats_per_bar=4)
    file.add(1, 0.1, [0x91, 64, 90])
    file.add(1, 0.2, [0xB1, 64, 127])
    midi = read(file, 1.0)
    track = midi.tracks[2]
    messages = [m.bytes() for m in track if not m.is_meta]
    assert sounding_after(messages) == {}
    assert [0xB1, 64, 0] in messages
    ends = [tick for tick, m in absolute(track) if m.type == "note_off"]
    assert ends == [2 * TICKS_PER_BEAT]  # at the time the file was written
    # The take goes on: the note-off written then was only for that version of the file.
    file.add(1, 1.5, [0x81, 64, 0])
    later = [m.bytes() for m in read(file, 2.0).tracks[2] if not m.is_meta]
    assert later.count([0x81, 64, 0]) == 1


def test_a_note_off_of_a_note_the_voice_is_not_playing_is_left_out():
    file = SessionFile(["player", "answers"], origin=0.0, bpm=120.0, beats_per_bar=4)
    file.add(1, 0.1, [0x80, 60, 0])  # a panic's note-off of the player's echoed note
    assert [m for m in read(file, 1.0).tracks[2] if not m.is_meta] == []


@pytest.mark.parametrize(("take", "name"), [(1, "set.mid"), (2, "set-2.mid"), (3, "set-3.mid")])
def test_takes_are_numbered(tmp_path, take, name):
    assert take_path(tmp_path / "set.mid", take) == tmp_path / name


def test_without_a_file_a_take_is_dated():
    assert take_path(None, 1, 0.0).name.startswith("cadenza-")
    assert take_path(None, 1, 0.0).suffix == ".mid"
