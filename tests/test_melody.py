"""Melody RNN encodings (cadenza.melody) over real tunes of music21's corpus and real MIDI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cadenza.corpus.melodies import melody_start, piece_melody, read_piece_grid
from cadenza.corpus.sources import resolve_source
from cadenza.melody import (
    COUNTER_BITS,
    NO_EVENT,
    NOTE_OFF,
    MelodyEncoding,
    binary_counter,
    major_key,
    melody_notes,
    squash,
    top_line,
)
from cadenza.pianoroll import make_grid_notes, read_grid_midi

ENCODING = MelodyEncoding()
TUNES = {  # one tune of each collection of `music21:tunes`
    "airds": "tunes/airdsAirs/book1#10",
    "essen": "tunes/essenFolksong/han1#186",
    "oneills": "tunes/oneills1850/0001-0050#3",
    "ryans": "tunes/ryansMammoth/BrokenSixpenceReel#1",
}


@pytest.fixture(scope="module")
def tunes() -> dict[str, object]:
    pieces = {p.id: p for p in resolve_source("music21:tunes")}
    return {name: read_piece_grid(pieces[piece_id]) for name, piece_id in TUNES.items()}


@pytest.mark.parametrize("name", TUNES)
def test_a_tune_round_trips_through_its_melody(tunes, name):
    grid = tunes[name]
    start = melody_start(grid)
    steps = int(grid.notes["end"].max()) - start
    notes = melody_notes(top_line(grid.notes, start, steps), offset=start)
    # A tune's rare chord (an Essen tune's double stop) keeps its highest note.
    order = np.lexsort((-grid.notes["pitch"], grid.notes["start"]))
    highest = grid.notes[order][np.unique(grid.notes["start"][order], return_index=True)[1]]
    assert len(notes) == len(highest) > 16
    assert notes[["start", "end", "pitch"]].tolist() == highest[["start", "end", "pitch"]].tolist()


@pytest.mark.parametrize("name", TUNES)
def test_every_position_decodes_back_from_its_lookback_label(tunes, name):
    classes = piece_melody(tunes[name])
    labels = ENCODING.labels(classes, "lookback")
    assert (labels >= ENCODING.num_classes).any()  # tunes repeat bars
    decoded = [ENCODING.decode_label(int(label), classes[: p + 1])
               for p, label in enumerate(labels)]
    assert decoded == classes[1:].tolist()


@pytest.mark.parametrize("name", TUNES)
def test_squash_fits_the_range_in_c_major_by_whole_transpositions(tunes, name):
    events = top_line(tunes[name].notes, melody_start(tunes[name]),
                      int(tunes[name].notes["end"].max()) - melody_start(tunes[name]))
    squashed, shift = squash(events, ENCODING)
    notes = events >= 0
    assert np.array_equal(squashed[~notes], events[~notes])
    assert squashed[notes].min() >= 48 and squashed[notes].max() < 84
    assert np.all((squashed[notes] - events[notes] - shift) % 12 == 0)
    assert major_key(squashed) == 0
    assert np.array_equal(ENCODING.to_events(ENCODING.to_classes(squashed)), squashed)


def test_top_line_of_a_chorale_is_its_highest_onsets(chorale_midi: Path):
    grid = read_grid_midi(chorale_midi.read_bytes(), chorale_midi.name)
    steps = int(grid.notes["end"].max())
    events = top_line(grid.notes, 0, steps)
    line = melody_notes(events)
    assert np.all(line["end"][:-1] <= line["start"][1:])  # one note at a time
    for note in line:
        starting = grid.notes[grid.notes["start"] == note["start"]]
        assert note["pitch"] == starting["pitch"].max()


def test_a_held_higher_note_hides_lower_onsets_and_ends_with_a_note_off():
    notes = make_grid_notes([(0, 8, 72), (2, 4, 60), (4, 6, 64), (10, 12, 67)])
    events = top_line(notes, 0, 14)
    assert events.tolist() == [72, -2, -2, -2, -2, -2, -2, -2, NOTE_OFF, -2, 67, -2, NOTE_OFF, -2]


def test_binary_counter_is_magentas_plus_minus_one_bits():
    assert binary_counter(np.array([0, 1, 6, 31])).tolist() == [
        [-1, -1, -1, -1, -1], [1, -1, -1, -1, -1], [-1, 1, 1, -1, -1], [1, 1, 1, 1, 1]]


def test_lookback_inputs_read_the_bars_before_and_flag_repeats():
    bar = [ENCODING.to_classes([60])[0]] + [0] * 15
    classes = np.array(bar * 3)  # the same bar three times: position 32 repeats 16 and 0
    inputs = ENCODING.inputs(classes, "lookback", first_position=5)
    n = ENCODING.num_classes
    assert inputs.shape == (48, ENCODING.input_size("lookback")) == (48, 3 * n + COUNTER_BITS + 2)
    row = inputs[32]
    assert row[:n].argmax() == classes[32]
    assert row[n : 2 * n].argmax() == classes[32 - 16 + 1]  # the next step's event a bar ago
    assert row[2 * n : 3 * n].argmax() == classes[32 - 32 + 1]
    assert row[3 * n : 3 * n + COUNTER_BITS].tolist() == binary_counter(np.array([38]))[0].tolist()
    assert row[-2:].tolist() == [1.0, 1.0]
    assert inputs[3, -2:].tolist() == [0.0, 0.0]  # no bars before it yet
    labels = ENCODING.labels(classes, "lookback")
    assert labels[31] == n  # position 32: "repeat one bar ago" wins over two
    assert labels[4] == n + 1  # NO_EVENT before two bars exist: Magenta's special case


@pytest.mark.parametrize("variant", ["basic", "attention"])
def test_other_variants_read_the_one_hot_and_predict_the_class(variant):
    classes = np.array([0, 14, 0, 1, 16])
    inputs = ENCODING.inputs(classes, variant)
    assert inputs.shape[1] == ENCODING.input_size(variant)
    assert inputs[:, : ENCODING.num_classes].argmax(1).tolist() == classes.tolist()
    assert ENCODING.labels(classes, variant).tolist() == classes[1:].tolist()


def test_pitches_outside_the_range_must_be_squashed_first():
    with pytest.raises(ValueError, match="squash first"):
        ENCODING.to_classes(np.array([NO_EVENT, 90]))
