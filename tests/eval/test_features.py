"""Yang & Lerch's features on hand-made note lists with known answers, and on a real file."""

from __future__ import annotations

import numpy as np
import pytest

from cadenza.eval import features as F
from cadenza.midi import load_notes
from cadenza.notes import empty_notes, make_notes

C_MAJOR = [60, 62, 64, 65, 67, 69, 71]


def legato(pitches, seconds: float = 0.5):
    start = np.arange(len(pitches)) * seconds
    return make_notes(start, start + seconds, pitches, 80)


def test_pitch_count_of_a_c_major_scale_is_seven():
    assert F.pitch_count(legato(C_MAJOR)) == 7


def test_pitch_class_histogram_of_a_scale_is_uniform_over_its_classes():
    hist = F.features(legato(C_MAJOR))["pitch_class_histogram"]
    assert np.allclose(hist[[0, 2, 4, 5, 7, 9, 11]], 1 / 7) and hist.sum() == pytest.approx(1)


def test_pitch_class_transitions_follow_a_legato_scale_step_by_step():
    matrix = F.pitch_class_transition_matrix(legato(C_MAJOR))
    expected = np.zeros((12, 12))
    for a, b in zip(C_MAJOR[:-1], C_MAJOR[1:], strict=True):
        expected[a % 12, b % 12] = 1 / 6
    assert np.allclose(matrix, expected)


def test_notes_apart_by_more_than_50_ms_make_no_transition():
    notes = make_notes([0.0, 1.0], [0.5, 1.5], [60, 62], 80)
    assert F.pitch_class_transition_matrix(notes).sum() == 0


def test_average_pitch_interval_of_a_c_major_scale():
    assert F.average_pitch_interval(legato(C_MAJOR)) == pytest.approx(11 / 6)


def test_note_count():
    assert F.note_count(legato(C_MAJOR)) == 7


def test_inter_onset_interval_counts_a_chord_as_one_onset():
    chords = make_notes([0, 0, 0, 0.5, 0.5, 1.0], 1.5, [60, 64, 67, 62, 65, 64], 80)
    assert F.average_inter_onset_interval(chords) == pytest.approx(0.5)


def test_quarter_notes_at_120_bpm_are_in_the_quarter_class():
    hist = F.note_length_histogram(legato(C_MAJOR, 0.5), beat_seconds=0.5)
    assert hist[2] == 1.0  # class 2: quarter


def test_note_length_transitions_of_quarter_then_half_notes():
    notes = make_notes([0.0, 0.5], [0.5, 1.5], [60, 62], 80)
    matrix = F.note_length_transition_matrix(notes, beat_seconds=0.5)
    assert matrix[2, 1] == 1.0  # quarter (class 2) -> half (class 1)


def test_features_of_no_notes_are_zeros_not_errors():
    values = F.features(empty_notes())
    assert all(np.all(np.isfinite(v)) and not np.any(v) for v in values.values())


def test_features_of_a_real_chorale(chorale_midi):
    values = F.features(load_notes(chorale_midi))
    assert list(values) == list(F.FEATURES)
    assert values["pitch_class_transition_matrix"].shape == (12, 12)
    assert values["pitch_class_histogram"].sum() == pytest.approx(1)
    assert 10 <= values["pitch_count"] <= 40
