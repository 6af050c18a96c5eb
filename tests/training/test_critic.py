"""Training and exporting the style critic, on a tiny real two-style corpus."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from cadenza.bundle import load_bundle
from cadenza.errors import CadenzaError, ConfigError
from cadenza.eval.critic import load_critic
from cadenza.training.critic import (
    CriticConfig,
    StyleClassifier,
    load_critic_config,
    train,
    train_critic,
)

TINY = CriticConfig(window=32, d_model=16, num_heads=2, d_ff=32, batch_size=8, steps=20,
                    eval_every=10)


@pytest.fixture(scope="module")
def styles_corpus(tmp_path_factory) -> Path:
    from cadenza.corpus.prepare import prepare_corpus

    out = tmp_path_factory.mktemp("styles")
    prepare_corpus(["music21:bach", "music21:folk"], out, limit=10, augment=False, jobs=1,
                   progress=False)
    return out


@pytest.fixture(scope="module")
def critic_bundle(styles_corpus, tmp_path_factory) -> Path:
    """Trained and exported as `cadenza train style-critic` does."""
    out = tmp_path_factory.mktemp("critic") / "critic"
    sizes = ["window=32", "d_model=16", "num_heads=2", "d_ff=32", "batch_size=8", "steps=20",
             "eval_every=10"]
    config = load_critic_config(None, [f"data={styles_corpus}", f"out={out}", *sizes])
    assert config == CriticConfig(**{**vars(TINY), "data": str(styles_corpus), "out": str(out)})
    train(config, progress=False)
    return out


def test_config_file_of_another_kind_is_refused(tmp_path):
    path = tmp_path / "vae.yaml"
    path.write_text("kind: vae\n")
    with pytest.raises(ConfigError, match="style-critic"):
        load_critic_config(path, [])


def test_exported_critic_is_a_bundle_eval_loads(critic_bundle):
    critic = load_critic(critic_bundle)
    assert critic.styles == ["bach", "folk"] and critic.window == TINY.window


def test_exported_critic_records_its_held_out_accuracy(critic_bundle):
    training = load_bundle(critic_bundle).training
    assert 0.0 <= training["test_accuracy"] <= 1.0 and training["steps"] == TINY.steps


def test_exported_critic_agrees_with_torch(critic_bundle):
    assert load_bundle(critic_bundle).manifest["parity"]["max_abs_logit_diff"] < 1e-4


def test_padding_does_not_change_the_verdict():
    """A piece shorter than the window is padded; the pad must be invisible to the model."""
    torch.manual_seed(0)
    model = StyleClassifier(TINY, 3).eval()
    events = torch.randint(0, 388, (1, 10))
    padded = torch.cat([events, torch.full((1, TINY.window - 10), model.pad)], dim=1)
    with torch.no_grad():
        assert torch.allclose(model(events), model(padded), atol=1e-5)


def test_probabilities_of_a_short_piece_sum_to_one(critic_bundle):
    probs = load_critic(critic_bundle).probabilities(np.array([60, 300, 188], np.int64))
    assert probs.sum() == pytest.approx(1.0, abs=1e-5)


def test_a_one_style_corpus_is_refused(tiny_corpus):
    with pytest.raises(CadenzaError, match="one style"):
        train_critic(tiny_corpus, TINY, progress=False)
