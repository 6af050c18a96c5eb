"""Export of the segment VAE: four graphs in one parity-checked bundle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from cadenza.bundle import load_bundle
from cadenza.errors import CadenzaError
from cadenza.export.vae import graphs, parity_check
from cadenza.pianoroll import read_grid_midi, segment_starts, to_roll
from cadenza.plugins import load_generator
from cadenza.training.loop import load_checkpoint
from cadenza.training.vae import SegmentVAE, VAEModelConfig
from cadenza.training.vae_train import model_from_checkpoint

PRIMERS = Path(__file__).parent.parent.parent / "cadenza" / "data" / "primers"


def test_parity_within_tolerance(tiny_vae_run):
    model = model_from_checkpoint(load_checkpoint(tiny_vae_run / "best.pt"))
    assert parity_check(model, graphs(model)) <= 1e-4


def test_graphs_that_disagree_are_refused(tiny_vae_run):
    model = model_from_checkpoint(load_checkpoint(tiny_vae_run / "best.pt"))
    torch.manual_seed(3)
    other = SegmentVAE(VAEModelConfig(**vars(model.config))).eval()  # fresh weights
    with pytest.raises(CadenzaError, match="parity check failed"):
        parity_check(model, graphs(other))


def test_the_bundle_holds_the_four_graphs_and_the_figures(tiny_vae_bundle):
    bundle = load_bundle(tiny_vae_bundle)
    assert bundle.plugin == "vae"
    assert set(bundle.manifest["graphs"]) == {"encoder", "transition", "initial", "step"}
    assert bundle.manifest["parity"]["max_abs_diff"] <= 1e-4
    assert len(bundle.manifest["style_codes"]["bach"]) == bundle.manifest["model"]["latent"]
    assert "continuation_nll_shuffled" in bundle.training


def test_the_plugin_codes_a_real_phrase_as_the_torch_model_does(tiny_vae_run, tiny_vae_bundle):
    model = model_from_checkpoint(load_checkpoint(tiny_vae_run / "best.pt"))
    generator = load_generator(tiny_vae_bundle)
    piece = read_grid_midi((PRIMERS / "chorale.mid").read_bytes())
    roll = to_roll(piece.notes, int(segment_starts(piece, generator.grid)[0]), generator.grid)
    mu, std = generator.encode(roll)
    with torch.no_grad():
        mu_t, logvar_t = model.encode(torch.from_numpy(roll)[None])
    assert np.abs(mu - mu_t[0].numpy()).max() < 1e-4
    assert np.abs(std - (0.5 * logvar_t[0]).exp().numpy()).max() < 1e-4
