"""`cadenza eval` of a melody-rnn bundle on its melody corpus (the events evaluator)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cadenza.cli import main
from cadenza.corpus.token_files import corpus_representation, load_split
from cadenza.eval.melody import sequence_notes
from cadenza.eval.samples import held_out_pieces
from cadenza.training.runner import load_checkpoint


@pytest.fixture(scope="module")
def results(tiny_melody_bundle, tiny_melody_corpus, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("melody-eval")
    main(["eval", str(tiny_melody_bundle), "--data", str(tiny_melody_corpus), "--samples",
          "4", "--seconds", "6", "--primer-seconds", "2", "--no-critic", "--no-progress",
          "-o", str(out)])
    return json.loads((out / "results.json").read_text())


def test_the_plugins_held_out_nll_is_the_trainers(results, tiny_melody_run):
    """The ONNX plugin scores each held-out step as the torch trainer did (a lookback label
    with the event it repeats): the same test split, the same figure."""
    metrics = load_checkpoint(tiny_melody_run / "best.pt")["metrics"]
    assert results["likelihood"]["events"] == metrics["test_steps"]
    assert results["likelihood"]["nll"] == pytest.approx(metrics["test_nll"], abs=2e-4)
    assert results["likelihood"]["bigram"] == pytest.approx(metrics["test_nll_bigram_baseline"],
                                                            abs=1e-4)


def test_samples_and_real_tunes_are_single_lines(results):
    comparison = results["comparison"]
    for figures in (comparison["figures_generated"], comparison["figures_real"]):
        assert figures["polyphony"][0] == pytest.approx(1.0)  # (mean, std)
        assert figures["note_polyphony"][0] == pytest.approx(1.0)
    assert all(sample["notes"] > 0 for sample in results["samples"])


def test_held_out_melodies_decode_to_their_tunes(tiny_melody_corpus):
    tokens, offsets = load_split(tiny_melody_corpus, "test")
    pieces = held_out_pieces(tiny_melody_corpus)
    first = sequence_notes(np.asarray(tokens[offsets[0] : offsets[1]]),
                           corpus_representation(tiny_melody_corpus))
    assert len(pieces) == len(offsets) - 1
    assert np.array_equal(pieces[0].notes, first)
    assert len(first) > 10 and first["start"].min() >= 0
    assert 48 <= first["pitch"].min() and first["pitch"].max() < 84


def test_the_report_counts_bar_repeats_of_both_sets(results):
    figures = results["repetition"]
    for name in ("real", "generated"):
        assert figures[name]["onsets"] > 0
        assert 0.0 <= figures[name]["one_bar"] <= 1.0


def test_bar_repeats_of_a_tune_and_of_its_bars_repeated(tiny_melody_corpus):
    from cadenza.eval.melody import bar_repeats

    pieces = held_out_pieces(tiny_melody_corpus)
    notes = pieces[0].notes
    bar = 2.0  # 16 steps at 120 bpm
    first_bar = notes[notes["start"] < bar]
    looped = np.concatenate([first_bar.copy() for _ in range(4)])
    for k in range(4):
        looped[k * len(first_bar) : (k + 1) * len(first_bar)]["start"] += k * bar
        looped[k * len(first_bar) : (k + 1) * len(first_bar)]["end"] += k * bar
    one, two, counted = bar_repeats(looped)
    assert (one, two) == (1.0, 1.0) and counted == 3 * len(first_bar)
    one, _, _ = bar_repeats(notes)
    assert one < 1.0
