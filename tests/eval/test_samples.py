"""The sets an evaluation compares: held-out pieces, windows, samples, held-out NLL."""

from __future__ import annotations

import numpy as np
import pytest

from cadenza.bundle import load_bundle
from cadenza.corpus.prepare import load_split
from cadenza.eval.samples import (
    Piece,
    across_styles,
    generate_samples,
    held_out_nll,
    held_out_pieces,
    real_windows,
    split_halves,
    split_styles,
    window,
)
from cadenza.notes import make_notes
from cadenza.plugins import load_generator


def test_window_moves_notes_to_zero_and_cuts_them_at_its_end():
    notes = make_notes([0.5, 2.5, 3.5], [1.0, 4.0, 3.8], [60, 62, 64], 80)
    inside = window(notes, 2.0, 3.0)
    assert inside["pitch"].tolist() == [62]
    assert inside["start"][0] == pytest.approx(0.5) and inside["end"][0] == pytest.approx(1.0)


def test_held_out_pieces_are_the_test_split_decoded_with_their_ids(tiny_corpus):
    pieces = held_out_pieces(tiny_corpus)
    _, offsets = load_split(tiny_corpus, "test")
    assert len(pieces) == len(offsets) - 1
    assert all(p.id.startswith("bach/") and len(p.notes) > 0 for p in pieces)


def test_real_windows_are_no_longer_than_asked(tiny_corpus):
    windows = real_windows(held_out_pieces(tiny_corpus), 5.0)
    assert len(windows) >= 2
    assert all(float(n["start"].max()) < 5.0 and float(n["end"].max()) <= 5.0 for _, n in windows)


def test_halves_share_no_piece_when_there_are_enough():
    notes = make_notes([0.0], [1.0], [60], 80)
    windows = [(piece, notes) for piece in range(6) for _ in range(2)]
    a, b = split_halves(windows)
    assert len(a) == len(b) == 6


def test_held_out_nll_matches_training_on_the_same_test_split(tiny_bundle, tiny_corpus):
    """One ONNX step per event scores what the torch model scored in training's finish()."""
    generator = load_generator(tiny_bundle)
    nll, scored = held_out_nll(generator, *load_split(tiny_corpus, "test"), progress=False)
    training = load_bundle(tiny_bundle).training
    assert scored == training["test_events"]
    assert nll == pytest.approx(training["test_nll"], abs=2e-3)


def test_held_out_nll_scores_each_piece_under_its_own_style(tiny_transformer_bundle,
                                                         tiny_corpus):
    # As training's finish() scores them: a chorale under "bach", not untagged.
    split = load_split(tiny_corpus, "test")
    styles = split_styles(tiny_corpus, "test")
    assert set(styles) == {"bach"}
    told = load_generator(tiny_transformer_bundle)
    told.set_style("bach")
    expected, _ = held_out_nll(told, *split, max_events=300, progress=False)
    styled, _ = held_out_nll(load_generator(tiny_transformer_bundle), *split, max_events=300,
                             styles=styles, progress=False)
    untagged, _ = held_out_nll(load_generator(tiny_transformer_bundle), *split, max_events=300,
                               progress=False)
    assert styled == pytest.approx(expected, abs=1e-9)
    assert abs(styled - untagged) > 1e-6


def test_held_out_pieces_carry_their_style(tiny_corpus):
    assert {piece.style for piece in held_out_pieces(tiny_corpus)} == {"bach"}


def test_held_out_nll_stops_at_max_events(tiny_bundle, tiny_corpus):
    generator = load_generator(tiny_bundle)
    _, scored = held_out_nll(
        generator, *load_split(tiny_corpus, "test"), max_events=50, progress=False
    )
    assert scored == 50


def test_samples_are_half_primed_half_from_scratch_and_as_long_as_asked(tiny_bundle, tiny_corpus):
    generator = load_generator(tiny_bundle)
    samples = generate_samples(
        generator, held_out_pieces(tiny_corpus), 3, 4.0, 2.0, seed=1, progress=False
    )
    assert [s.kind for s in samples] == ["primer", "primer", "scratch"]
    generated = np.concatenate([s.notes["start"] for s in samples])
    assert generated.min() >= 0.0 and generated.max() < 4.0 + 1e-6
    assert samples[0].primer_seconds > 0 and samples[2].primer_seconds == 0


def test_samples_are_the_same_for_the_same_seed(tiny_bundle, tiny_corpus):
    pieces = held_out_pieces(tiny_corpus)
    first, second = (
        generate_samples(load_generator(tiny_bundle), pieces, 2, 3.0, 1.0, seed=5, progress=False)
        for _ in range(2)
    )
    assert all(np.array_equal(a.events, b.events) for a, b in zip(first, second, strict=True))


def test_samples_take_the_pieces_across_their_styles_in_proportion():
    stored = [Piece(f"{style}{k}", np.zeros(0), style)
              for style, n in (("bach", 4), ("folk", 2)) for k in range(n)]
    assert [p.id for p in across_styles(stored)] == ["bach0", "folk0", "bach1", "bach2",
                                                     "folk1", "bach3"]
    one_style = [Piece(f"p{k}", np.zeros(0), "bach") for k in range(5)]
    assert across_styles(one_style) == one_style
