"""The segment VAE's training: config, the grid cache, a real tiny run, resume."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from cadenza.cli import main
from cadenza.errors import ConfigError
from cadenza.training.vae import load_vae_config
from cadenza.training.vae_data import load_pieces, make_segments
from cadenza.training.vae_train import train
from tests.helpers import TINY_VAE


def test_a_bad_setting_names_its_field():
    with pytest.raises(ConfigError, match="model.latent"):
        load_vae_config(None, ["model.latent=many"])


def test_a_grid_that_is_no_whole_number_of_steps_is_refused():
    with pytest.raises(ConfigError, match="model"):
        load_vae_config(
            None, ["model.beats_per_bar=7", "model.beat_unit=8", "model.steps_per_quarter=1"]
        )


def test_train_vae_with_a_bad_setting_is_one_line_and_exit_2(capsys):
    assert main(["train", "vae", "--set", "beta=loud"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["cadenza: error: beta: expected float, got 'loud'"]


def test_the_checkpoint_is_plain_data_with_the_held_out_figures(tiny_vae_run):
    checkpoint = torch.load(tiny_vae_run / "best.pt", weights_only=True)
    assert checkpoint["kind"] == "vae"
    metrics = checkpoint["metrics"]
    assert len(metrics["kl_per_dim"]) == checkpoint["config"]["model"]["latent"]
    assert 0 <= metrics["active_dims"] <= len(metrics["kl_per_dim"])
    for key in ("step_accuracy_teacher_forced", "step_accuracy_sampled", "continuation_accuracy"):
        assert 0.0 <= metrics[key] <= 1.0
    assert metrics["continuation_nll"] > 0 and metrics["continuation_nll_shuffled"] > 0
    assert set(checkpoint["style_codes"]) == {"bach"}


def test_successive_segments_follow_each_other(tiny_vae_run):
    config = json.loads((tiny_vae_run.parent / "grid" / "cache.json").read_text())
    pieces, styles, names = load_pieces(tiny_vae_run.parent / "grid", "train")
    assert names == ["bach"] and config["pieces"]["train"] == len(pieces)
    model = load_vae_config(None, TINY_VAE).model
    segments = make_segments(pieces, styles, model.grid)
    pairs = np.flatnonzero(segments.next >= 0)
    assert len(pairs) > 0
    following = segments.next[pairs]
    assert np.array_equal(segments.piece[following], segments.piece[pairs])
    assert np.array_equal(
        segments.start[following], segments.start[pairs] + model.grid.segment_steps
    )


def test_resume_goes_on_from_the_last_step(tiny_vae_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(tiny_vae_run, out)
    cache = tiny_vae_run.parent / "grid"
    before = (cache / "train.notes.npy").stat().st_mtime_ns
    config = load_vae_config(
        None, [f"cache={cache}", f"out={out}", "max_steps=50", "eval_every=10", *TINY_VAE]
    )
    train(config, resume=True, progress=False)
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [20, 40, 50]
    assert torch.load(out / "last.pt", weights_only=True)["step"] == 50
    assert (cache / "train.notes.npy").stat().st_mtime_ns == before  # the cache was reused
