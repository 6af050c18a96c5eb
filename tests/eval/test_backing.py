"""The backing check: per-beat pitch-class agreement, on hand-made parts and a real tiny bundle."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cadenza.errors import ConfigError
from cadenza.eval.backing import (
    LATE,
    LISTENING,
    REFERENCES,
    WITHHELD,
    beat_agreement,
    check_backing,
    consonance,
    evaluate_backing,
)
from cadenza.pianoroll import make_grid_notes
from cadenza.plugins import load_generator


def grid_notes(*notes: tuple[int, int, int]) -> np.ndarray:
    return make_grid_notes(notes)


def test_agreement_counts_pitch_classes_on_beats_where_both_sound():
    beats = np.array([0, 4, 8])
    real = [grid_notes((0, 8, 48), (0, 4, 55), (4, 8, 52))]  # C+G, then C+E, then silence
    generated = [grid_notes((0, 4, 60), (4, 8, 53), (8, 12, 60))]  # C (octave up), then F
    agree, recall, counted = beat_agreement(generated, real, beats)
    assert counted == 2  # beat 8: the real voices are silent
    assert agree == pytest.approx(1.0 + 0.0)  # C is in C+G; F is not in C+E
    assert recall == pytest.approx(0.5 + 0.0)


def test_consonance_counts_the_backings_pitch_classes_against_the_players_one_note():
    beats = np.array([0, 4, 8])
    player = grid_notes((0, 4, 72), (4, 8, 74), (8, 12, 72), (8, 12, 76))  # C, D, then C+E
    generated = [grid_notes((0, 4, 57), (0, 4, 55), (4, 8, 50), (8, 12, 60))]  # A+G, D, C
    consonant, counted = consonance(generated, player, beats)
    assert counted == 3  # beat 8: the player sounds two notes
    assert consonant == 2  # A a third below C, D in unison with D; G below C is a fourth


def test_the_check_reports_with_and_without_the_player(tiny_backing_bundle, tiny_parts_corpus):
    generator = load_generator(tiny_backing_bundle, seed=0)
    results = check_backing(generator, tiny_parts_corpus, split="train", pieces=3, progress=False)
    assert set(results) == {LISTENING, LATE, WITHHELD, *REFERENCES}
    assert results["reference: the player's notes"].notes == 0  # what the figures mean
    assert results["reference: the player's notes"].consonance is None
    real = results["reference: the real lower voices"]
    assert real.agreement == real.recall == 1.0 and 0.5 < real.consonance < 1.0
    assert len(real.moves) == 3 and all(0.0 < m < 2.0 for m in real.moves)  # Bach's voices
    assert results[LISTENING].moves is not None and len(results[LISTENING].moves) == 3
    for figures in results.values():
        assert figures.beats > 0
        assert 0.0 <= figures.agreement <= 1.0 and 0.0 <= figures.recall <= 1.0


def test_an_events_corpus_is_refused(tiny_backing_bundle, tiny_corpus):
    with pytest.raises(ConfigError, match="not a parts corpus"):
        check_backing(load_generator(tiny_backing_bundle), tiny_corpus, progress=False)


def test_evaluate_writes_the_report(tiny_backing_bundle, tiny_parts_corpus, tmp_path: Path):
    evaluate_backing(tiny_backing_bundle, tmp_path, data=tiny_parts_corpus, progress=False)
    results = json.loads((tmp_path / "results.json").read_text())
    # Both rows judged against the same real parts of the same pieces ("beats" counts only
    # where the generated parts sound, so it may differ between them).
    assert results["with the player"]["real_notes"] == results["player withheld"]["real_notes"] > 0
    assert results["with the player"]["beats"] > 0
    assert "| with the player |" in (tmp_path / "report.md").read_text()


def test_another_bundle_is_compared_under_the_same_players(tiny_backing_bundle,
                                                            tiny_parts_corpus, tmp_path: Path):
    evaluate_backing(tiny_backing_bundle, tmp_path, data=tiny_parts_corpus, progress=False,
                     compare=[tiny_backing_bundle])
    results = json.loads((tmp_path / "results.json").read_text())
    (other,) = [name for name in results if name.startswith("tiny-backing (")]
    # The same bundle and seed under the same players: the same figures.
    assert results[other] == results[LISTENING]


def test_evaluate_judges_on_the_split_asked_for(tiny_backing_bundle, tiny_parts_corpus,
                                                tmp_path: Path):
    real_notes = {}
    for split in ("valid", "test"):
        out = tmp_path / split
        results = evaluate_backing(tiny_backing_bundle, out, data=tiny_parts_corpus,
                                   progress=False, split=split)
        real_notes[split] = results[LISTENING].real_notes
        assert f"({split} split)" in (out / "report.md").read_text()
    assert real_notes["valid"] != real_notes["test"]  # other pieces' real parts
