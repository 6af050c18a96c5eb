"""The codec-lm bundle: four parity-checked graphs and a manifest the runtime reads."""

from __future__ import annotations

import pytest

from cadenza.bundle import load_bundle
from cadenza.errors import CadenzaError
from cadenza.export.checkpoint import export_checkpoint


def test_bundle_holds_the_lm_and_the_codec(tiny_codec_lm_bundle):
    bundle = load_bundle(tiny_codec_lm_bundle)
    assert bundle.plugin == "codec-lm"
    assert set(bundle.manifest["graphs"]) == {"step", "encoder", "decoder"}
    rep = bundle.representation
    assert rep["pattern"] == "delay" and rep["num_codebooks"] == 4
    assert rep["hop"] * rep["frame_rate"] == rep["sample_rate"]
    assert bundle.sampling == {"temperature": 1.0, "top_k": 250, "top_p": 1.0, "cfg": 3.0}


def test_parity_figures_are_recorded(tiny_codec_lm_bundle):
    parity = load_bundle(tiny_codec_lm_bundle).manifest["parity"]
    assert parity["max_abs_logit_diff"] < 1e-4
    assert parity["codec"]["code_agreement"] >= 0.99


def test_context_is_the_training_window(tiny_codec_lm_bundle):
    # 2-second clips: 100 frames, 103 delay-pattern steps, plus the condition.
    assert load_bundle(tiny_codec_lm_bundle).manifest["context"] == 104


def test_a_missing_codec_checkpoint_is_one_line(tiny_codec_lm_run, tmp_path):
    import torch

    checkpoint = torch.load(tiny_codec_lm_run / "best.pt", weights_only=True)
    checkpoint["config"]["codec"] = str(tmp_path / "gone.pt")
    torch.save(checkpoint, tmp_path / "lm.pt")
    with pytest.raises(CadenzaError, match="gone.pt"):
        export_checkpoint(tmp_path / "lm.pt", tmp_path / "bundle")
