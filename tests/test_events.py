"""The Performance codec: note_seq's events for hand-checked cases, exact round trips over
real files, and properties over random note lists."""

from __future__ import annotations

import mido
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cadenza.corpus.sources import load_notes as piece_notes
from cadenza.corpus.sources import resolve_source
from cadenza.events import PERFORMANCE as P
from cadenza.midi import load_notes
from cadenza.notes import make_notes, sort_notes


def on(p):
    return P.note_on + p


def off(p):
    return P.note_off + p


def shift(s):
    return P.time_shift + s


def vel(b):
    return P.velocity + b


def write(path, messages, ticks_per_beat=100):
    """A type-1 MIDI file at 120 bpm (1 tick = 5 ms) from (tick, message) pairs."""
    mid = mido.MidiFile(type=1, ticks_per_beat=ticks_per_beat)
    tempo = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500_000, time=0)])
    track, last = mido.MidiTrack(), 0
    for tick, msg in sorted(messages, key=lambda m: m[0]):
        track.append(msg.copy(time=tick - last))
        last = tick
    mid.tracks += [tempo, track]
    mid.save(path)
    return path


def note(tick_on, tick_off, pitch, velocity=64, channel=0):
    return [
        (tick_on, mido.Message("note_on", note=pitch, velocity=velocity, channel=channel)),
        (tick_off, mido.Message("note_off", note=pitch, velocity=0, channel=channel)),
    ]


def test_vocabulary_is_note_seqs_388_classes():
    assert P.num_classes == 388
    assert (on(0), on(127), off(0), off(127)) == (0, 127, 128, 255)
    assert (shift(1), shift(100), vel(1), vel(32)) == (256, 355, 356, 387)
    assert P.velocity_to_bin(np.array([1, 4, 5, 64, 100, 127])).tolist() == [1, 1, 2, 16, 25, 32]
    assert P.bin_to_velocity(np.array([1, 16, 32])).tolist() == [1, 61, 125]


def test_velocity_event_only_when_the_bin_changes(tmp_path):
    # 1 tick = 5 ms; 100 ticks = 0.5 s = 50 steps
    path = write(
        tmp_path / "v.mid", note(0, 100, 60, 80) + note(100, 200, 62, 80) + note(200, 300, 64, 100)
    )
    assert P.encode(load_notes(path)).tolist() == [
        vel(20),
        on(60),
        shift(50),
        off(60),
        on(62),
        shift(50),
        off(62),
        vel(25),
        on(64),
        shift(50),
        off(64),
    ]


def test_gap_longer_than_a_second_is_repeated_shifts(tmp_path):
    path = write(tmp_path / "gap.mid", note(0, 20, 60) + note(500, 520, 62))
    assert P.encode(load_notes(path)).tolist() == [
        vel(16),
        on(60),
        shift(10),
        off(60),
        shift(100),
        shift(100),
        shift(40),
        on(62),
        shift(10),
        off(62),
    ]


def test_overlapping_same_pitch_round_trips_first_in_first_out(tmp_path):
    path = write(tmp_path / "overlap.mid", note(0, 200, 60) + note(100, 300, 60))
    notes = load_notes(path)
    tokens = P.encode(notes)
    assert tokens.tolist() == [
        vel(16),
        on(60),
        shift(50),
        on(60),
        shift(50),
        off(60),
        shift(50),
        off(60),
    ]
    decoded = P.decode(tokens)
    assert decoded[["start", "end"]].tolist() == [(0.0, 1.0), (0.5, 1.5)]


def test_sustain_pedal_extends_notes_as_note_seq(tmp_path):
    pedal = [
        (20, mido.Message("control_change", control=64, value=127)),
        (200, mido.Message("control_change", control=64, value=0)),
    ]
    # C held 0-0.5 s, E 0.25-0.5 s, C struck again at 0.75 s while the pedal is down.
    path = write(
        tmp_path / "pedal.mid", note(0, 100, 60) + note(50, 100, 64) + note(150, 160, 60) + pedal
    )
    notes = load_notes(path)
    assert [(int(n["pitch"]), n["start"], n["end"]) for n in notes] == [
        (60, 0.0, 0.75),
        (64, 0.25, 1.0),
        (60, 0.75, 1.0),
    ]
    assert P.encode(notes).tolist() == [
        vel(16),
        on(60),
        shift(25),
        on(64),
        shift(50),
        off(60),
        on(60),
        shift(25),
        off(64),
        off(60),
    ]
    assert len(load_notes(path, sustain=False)) == 3


def test_decode_ignores_orphan_offs_and_closes_unended_notes_after_5_s():
    tokens = [off(61), vel(32), on(60), on(62), shift(100), off(62), off(62)] + [shift(100)] * 7
    notes = P.decode(np.array(tokens))
    assert [(int(n["pitch"]), n["start"], n["end"], int(n["velocity"])) for n in notes] == [
        (60, 0.0, 5.0, 125),
        (62, 0.0, 1.0, 125),
    ]


def test_decode_drops_zero_length_notes_and_uses_velocity_100_before_any_velocity_event():
    notes = P.decode(np.array([on(60), off(60), on(64), shift(10), off(64)]))
    assert notes[["pitch", "velocity"]].tolist() == [(64, 100)]


def quantized(notes):
    """What the codec keeps of notes: 10 ms steps, one velocity per bin, no channel."""
    q = notes.copy()
    q["start"] = P.quantize(notes["start"]) / 100
    q["end"] = np.maximum(P.quantize(notes["end"]), P.quantize(notes["start"]) + 1) / 100
    q["velocity"] = P.bin_to_velocity(P.velocity_to_bin(notes["velocity"]))
    q["channel"] = 0
    return sort_notes(q)


def assert_round_trip(notes):
    """Exact up to quantisation: the same onsets (time, pitch, velocity bin) and offsets
    (time, pitch). Where two parts overlap on one pitch the
    merged stream cannot say which offset was whose; first-in first-out decides, as note_seq."""
    tokens = P.encode(notes)
    decoded, expected = P.decode(tokens), quantized(notes)
    onsets = lambda n: sorted(n[["start", "pitch", "velocity"]].tolist())  # noqa: E731
    offsets = lambda n: sorted(n[["end", "pitch"]].tolist())  # noqa: E731
    assert onsets(decoded) == onsets(expected)
    assert offsets(decoded) == offsets(expected)


@pytest.mark.parametrize("index", range(0, 400, 40))
def test_round_trip_on_real_chorales(index):
    notes = piece_notes(resolve_source("music21:bach")[index])
    assert len(notes) > 0
    assert_round_trip(notes)


def test_round_trip_of_a_real_midi_file(chorale_midi):
    assert_round_trip(load_notes(chorale_midi))


@st.composite
def note_lists(draw):
    """Random notes with no two of the same pitch overlapping (those are FIFO-ambiguous)."""
    n = draw(st.integers(1, 40))
    pitches = draw(st.lists(st.integers(0, 127), min_size=n, max_size=n))
    rows, busy_until = [], {}
    for pitch in pitches:
        start = busy_until.get(pitch, 0) + draw(st.integers(0, 300))
        length = draw(st.integers(1, 700))
        busy_until[pitch] = start + length
        rows.append((start / 100, (start + length) / 100, pitch, draw(st.integers(1, 127))))
    start, end, pitch, velocity = zip(*rows, strict=True)
    return make_notes(start, end, pitch, velocity)


@settings(max_examples=200, deadline=None)
@given(note_lists())
def test_round_trip_property(notes):
    tokens = P.encode(notes)
    assert tokens.min() >= 0 and tokens.max() < P.num_classes
    np.testing.assert_array_equal(P.decode(tokens), quantized(notes))
    assert P.seconds(tokens) == pytest.approx(notes["end"].max())


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 387), max_size=300))
def test_decode_accepts_any_event_sequence(tokens):
    notes = P.decode(np.array(tokens, dtype=np.int64))
    assert np.all(notes["end"] > notes["start"])
    assert np.all(notes["end"] - notes["start"] <= P.seconds(np.array(tokens)) + 1e-9)


def test_too_many_events_is_one_line_naming_the_primer(tiny_bundle, chorale_midi, tmp_path,
                                                       monkeypatch, capsys):
    """encode's backstop (MAX_ENCODED_EVENTS, before the tokens are allocated) reaches the
    user of `cadenza generate --primer` as one line naming the file, exit 2. The cap is
    lowered to the chorale's size: a real primer over the real one is tens of MB."""
    from cadenza import events
    from cadenza.cli import main

    assert len(P.encode(load_notes(chorale_midi))) > 200
    monkeypatch.setattr(events, "MAX_ENCODED_EVENTS", 200)
    with pytest.raises(events.TooManyEvents):  # a CadenzaError (one line), and a ValueError
        P.encode(load_notes(chorale_midi))
    code = main(["generate", "--bundle", str(tiny_bundle), "--primer", str(chorale_midi),
                 "-o", str(tmp_path / "out.mid")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert str(chorale_midi) in err and "events, over 200" in err
    assert not (tmp_path / "out.mid").exists()
