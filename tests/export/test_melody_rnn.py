"""Melody RNN export: one ONNX step graph per variant, parity-checked against torch."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from cadenza.bundle import load_bundle
from cadenza.errors import BundleError
from cadenza.export.checkpoint import export_checkpoint
from cadenza.export.melody_rnn import parity_check, step_graph
from cadenza.melody import MelodyEncoding
from cadenza.plugins import load_generator
from cadenza.plugins.manifests import MelodyRNNManifest
from cadenza.training.melody_rnn import MelodyModelConfig, MelodyRNN
from tests.conftest import train_tiny_melody_rnn


@pytest.mark.parametrize("variant", ["basic", "lookback", "attention"])
def test_each_variant_exports_a_parity_checked_bundle(tiny_melody_corpus, tmp_path, variant):
    run = train_tiny_melody_rnn(tiny_melody_corpus, tmp_path / "run", variant)
    bundle = load_bundle(export_checkpoint(run / "best.pt", tmp_path / "bundle"))
    assert bundle.plugin == "melody-rnn"
    assert bundle.manifest["parity"]["max_abs_logit_diff"] <= 1e-4
    section = bundle.section(MelodyRNNManifest)
    assert section.model.variant == variant
    assert section.representation.encoding() == MelodyEncoding()
    assert bundle.manifest["training"]["test_nll"] > 0
    assert load_generator(bundle.path).variant == variant


def test_a_whole_melody_through_the_graph_matches_torch_on_it():
    """The step graph, fed a melody step by step from numpy, gives the logits the torch
    model gives for the whole sequence at once (the trainer's view)."""
    torch.manual_seed(1)
    model = MelodyRNN(MelodyModelConfig(variant="lookback", hidden_size=16, num_layers=2)).eval()
    session = ort.InferenceSession(step_graph(model), providers=["CPUExecutionProvider"])
    encoding = model.encoding
    melody = np.array([0, 14, 0, 16, 0, 18, 1, 0] * 6)
    inputs = encoding.inputs(melody, "lookback", first_position=3)
    with torch.no_grad():
        whole = model(torch.from_numpy(inputs)[None])[0][0].numpy()
    h = c = np.zeros((2, 1, 16), np.float32)
    for t, row in enumerate(inputs):
        logits, h, c = session.run(None, {"inputs": row[None], "h": h, "c": c})
        assert np.abs(logits[0] - whole[t]).max() < 1e-4


def test_parity_check_catches_a_graph_of_other_weights():
    torch.manual_seed(2)
    model = MelodyRNN(MelodyModelConfig(variant="attention", hidden_size=8, num_layers=1))
    other = MelodyRNN(MelodyModelConfig(variant="attention", hidden_size=8, num_layers=1))
    with pytest.raises(Exception, match="parity check failed"):
        parity_check(model.eval(), step_graph(other.eval()), steps=20)


def test_a_manifest_with_an_unknown_variant_is_refused(tiny_melody_bundle, tmp_path):
    import shutil

    import yaml

    copy = tmp_path / "bad"
    shutil.copytree(tiny_melody_bundle, copy)
    manifest = yaml.safe_load((copy / "manifest.yaml").read_text())
    manifest["model"]["variant"] = "transformer"
    (copy / "manifest.yaml").write_text(yaml.safe_dump(manifest))
    with pytest.raises(BundleError, match="model.variant"):
        load_generator(copy)
