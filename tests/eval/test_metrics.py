"""MusPy's figures (and Cadenza's own two) on hand-made note lists with known answers, and on
real MIDI files; tests/eval/test_muspy_agreement.py checks them against the muspy package."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from cadenza.eval import metrics
from cadenza.midi import load_notes
from cadenza.notes import empty_notes, make_notes

PRIMERS = Path(__file__).resolve().parents[2] / "cadenza" / "data" / "primers"
C_MAJOR = [60, 62, 64, 65, 67, 69, 71]


def melody(pitches, seconds: float = 0.5):
    """One note after another, each `seconds` long (a quarter note at 120 bpm)."""
    start = np.arange(len(pitches)) * seconds
    return make_notes(start, start + seconds, pitches, 80)


def test_c_major_scale_is_fully_in_one_scale():
    assert metrics.scale_consistency(melody(C_MAJOR)) == 1.0


def test_c_major_scale_uses_seven_pitch_classes():
    assert metrics.pitch_classes_used(melody(C_MAJOR + [72])) == 7


def test_chromatic_scale_fits_seven_of_twelve_notes_in_a_scale():
    assert metrics.scale_consistency(melody(range(60, 72))) == pytest.approx(7 / 12)


def test_pitch_class_entropy_of_equally_used_classes_is_log2_of_their_count():
    assert metrics.pitch_class_entropy(melody(C_MAJOR)) == pytest.approx(math.log2(7))
    assert metrics.pitch_class_entropy(melody(range(60, 72))) == pytest.approx(math.log2(12))


def test_one_repeated_pitch_class_has_no_entropy():
    assert metrics.pitch_class_entropy(melody([60, 72, 48])) == 0.0


def test_a_minor_melody_is_consistent_with_its_scale():
    a_minor = [57, 59, 60, 62, 64, 65, 67]  # A natural minor: the same classes as C major
    assert metrics.scale_consistency(melody(a_minor)) == 1.0


def test_polyphony_counts_pitches_sounding_when_any_sounds():
    triad = make_notes([0, 0, 0, 1.0], [1.0, 1.0, 1.0, 2.0], [60, 64, 67, 72], 80)
    assert metrics.polyphony(triad) == pytest.approx(2.0)  # 3 pitches for 1 s, then 1 for 1 s
    assert metrics.note_polyphony(triad) == pytest.approx(2.0)


@pytest.mark.parametrize("figure", [metrics.polyphony, metrics.note_polyphony])
def test_polyphony_leaves_out_silence(figure):
    apart = make_notes([0.0, 5.0], [1.0, 6.0], [60, 62], 80)
    assert figure(apart) == pytest.approx(1.0)


def test_a_unison_is_one_pitch_but_two_notes():
    # Two voices on C4 for 1 s (on two channels), then one voice for 1 s.
    unison = make_notes([0.0, 0.0, 1.0], [1.0, 1.0, 2.0], [60, 60, 64], 80, channel=[0, 1, 0])
    assert metrics.polyphony(unison) == pytest.approx(1.0)
    assert metrics.note_polyphony(unison) == pytest.approx(1.5)


def test_polyphony_leaves_out_drums():
    kit = make_notes([0.0, 0.0], [1.0, 1.0], [60, 36], 80, channel=[0, 9])
    assert metrics.polyphony(kit) == pytest.approx(1.0)
    assert math.isnan(metrics.polyphony(kit[kit["channel"] == 9]))


def test_polyphony_is_counted_on_the_beat_grid():
    # Two notes overlapping by 10 ms: less than half a step of 24 a beat at 120 bpm (20.8 ms),
    # so on MusPy's grid they never sound together; in exact time they do, briefly.
    legato = make_notes([0.0, 0.5], [0.51, 1.0], [60, 62], 80)
    assert metrics.polyphony(legato) == pytest.approx(1.0)
    assert metrics.note_polyphony(legato) == pytest.approx(1.01)


def test_pitch_range_is_highest_minus_lowest():
    assert metrics.pitch_range(melody(C_MAJOR)) == 11


def test_empty_beat_rate_counts_beats_without_a_sounding_note():
    notes = make_notes([0.0, 1.0], [0.5, 1.5], [60, 62], 80)  # beats 0 and 2 of 0..3
    assert metrics.empty_beat_rate(notes, 0.5, length=2.0) == pytest.approx(0.5)


def test_a_note_held_across_beats_fills_them():
    held = make_notes([0.0], [2.0], [60], 80)
    assert metrics.empty_beat_rate(held, 0.5, length=2.0) == 0.0


def test_same_rhythm_every_bar_is_perfectly_groove_consistent():
    bar = np.array([0.0, 0.5, 0.75, 1.5])  # onsets in a 2-s bar of 4 beats at 120 bpm
    start = np.concatenate([bar + 2.0 * k for k in range(4)])
    notes = make_notes(start, start + 0.25, 60, 80)
    assert metrics.groove_consistency(notes, 0.5) == 1.0


def test_groove_consistency_drops_by_the_share_of_grid_steps_that_differ():
    # Bar 1 has onsets on the four beats, bar 2 on those and the four off-beat 8ths:
    # 4 of the 16 sixteenth steps differ.
    start = np.concatenate([np.arange(4) * 0.5, 2.0 + np.arange(8) * 0.25])
    notes = make_notes(start, start + 0.1, 60, 80)  # the last ends inside bar 2
    assert metrics.groove_consistency(notes, 0.5, resolution=4) == pytest.approx(1 - 4 / 16)
    assert metrics.groove_consistency(notes, 0.5) == pytest.approx(1 - 4 / 96)  # 24 a beat
    values = metrics.figures(notes, beat_seconds=0.5)
    assert values["groove_consistency_16th"] == pytest.approx(1 - 4 / 16)


def test_a_piece_ending_on_a_barline_has_an_empty_bar_after_it():
    # As MusPy counts bars: up to the last note's end, so one full bar then an empty one.
    whole_bar = make_notes([0.0], [2.0], [60], 80)
    assert metrics.groove_consistency(whole_bar, 0.5) == pytest.approx(1 - 1 / 96)


def test_figures_of_no_notes_are_undefined():
    values = metrics.figures(empty_notes())
    assert math.isnan(values["scale_consistency"]) and math.isnan(values["polyphony"])


def test_set_figures_leave_out_undefined_pieces():
    mean, _ = metrics.set_figures([melody(C_MAJOR), empty_notes()])["scale_consistency"]
    assert mean == 1.0


def test_a_four_part_chorale_has_four_voices_and_fewer_pitches():
    chorale = load_notes(PRIMERS / "chorale.mid")
    assert metrics.note_polyphony(chorale) == pytest.approx(4.0, abs=0.05)
    assert metrics.polyphony(chorale) == pytest.approx(3.75)  # voices meet in unisons


def test_a_folk_tune_is_monophonic_and_in_one_scale():
    notes = load_notes(PRIMERS / "folk.mid")
    assert metrics.polyphony(notes) == pytest.approx(1.0)
    assert metrics.scale_consistency(notes) == 1.0


def test_a_real_chorale_figures_lie_in_their_ranges(chorale_midi):
    values = metrics.figures(load_notes(chorale_midi))
    assert 2.0 < values["pitch_class_entropy"] < math.log2(12)
    assert values["scale_consistency"] > 0.85
    assert 0.0 <= values["empty_beat_rate"] < 0.2
    assert 0.0 < values["groove_consistency"] <= 1.0
