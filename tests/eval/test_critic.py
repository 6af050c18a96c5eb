"""The shipped style critic, run by onnxruntime on real MIDI files."""

from __future__ import annotations

from pathlib import Path

import pytest

from cadenza.errors import BundleError
from cadenza.eval.critic import load_critic
from cadenza.events import PERFORMANCE
from cadenza.midi import load_notes

PRIMERS = Path(__file__).resolve().parents[2] / "cadenza" / "data" / "primers"


@pytest.fixture(scope="module")
def critic():
    found = load_critic()
    assert found is not None, "no shipped style critic in models/style-critic (make models)"
    return found


def events_of(path: Path):
    return PERFORMANCE.encode(load_notes(path))


def test_shipped_critic_knows_the_corpus_styles(critic):
    assert critic.styles == ["bach", "palestrina", "folk"]
    assert critic.accuracy > 0.8


def test_a_bach_chorale_sounds_like_bach(critic, chorale_midi):
    labels, _ = critic.classify([events_of(chorale_midi)])
    assert labels == ["bach"]


def test_a_folk_tune_sounds_like_folk(critic):
    labels, _ = critic.classify([events_of(PRIMERS / "folk.mid")])
    assert labels == ["folk"]


def test_probabilities_are_a_distribution_over_the_styles(critic):
    probs = critic.probabilities(events_of(PRIMERS / "piano.mid"))
    assert probs.shape == (3,) and probs.sum() == pytest.approx(1.0, abs=1e-5)


def test_a_generator_bundle_is_not_a_critic(tiny_bundle):
    with pytest.raises(BundleError, match="field 'plugin'"):
        load_critic(tiny_bundle)


def test_a_missing_critic_asked_for_by_path_is_an_error(tmp_path):
    with pytest.raises(BundleError, match="no such bundle"):
        load_critic(tmp_path / "none")
