"""Transformer export: prefill and cached step graphs, parity-checked over a sliding window."""

from __future__ import annotations

import copy

import pytest
import torch

from cadenza.bundle import load_bundle
from cadenza.errors import CadenzaError
from cadenza.export.transformer import PARITY_CONTEXT, PARITY_STEPS, graphs, parity_check
from cadenza.training.loop import load_checkpoint, model_from_checkpoint


@pytest.fixture(scope="module")
def model(tiny_transformer_run):
    return model_from_checkpoint(load_checkpoint(tiny_transformer_run / "best.pt"))


def test_the_rollout_outlasts_the_window_and_agrees(model):
    assert PARITY_STEPS > 3 * PARITY_CONTEXT  # the cache slides several times over
    assert parity_check(model, graphs(model)) <= 1e-4


def test_a_graph_that_disagrees_is_refused(model):
    other = copy.deepcopy(model)
    with torch.no_grad():
        other.head.bias.add_(torch.linspace(-3, 3, other.head.bias.numel()))
    with pytest.raises(CadenzaError, match="parity check failed"):
        parity_check(model, graphs(other))


def test_the_bundle_names_its_graphs_styles_and_figures(tiny_transformer_bundle):
    bundle = load_bundle(tiny_transformer_bundle)
    assert bundle.plugin == "transformer"
    assert set(bundle.manifest["graphs"]) == {"prefill", "step"}
    assert bundle.manifest["conditions"]["styles"] == ["bach"]
    assert bundle.io["step"]["inputs"]["cache_k"]["shape"][2] == "context"
    assert bundle.manifest["parity"]["max_abs_logit_diff"] <= 1e-4
    assert {"valid_nll", "test_nll", "test_nll_bigram_baseline"} <= set(bundle.training)


def test_a_backing_bundle_carries_its_parts_registers(tiny_backing_bundle, tiny_parts_corpus):
    from cadenza.corpus.prepare import load_split
    from cadenza.parts import PartsCodec

    ranges = load_bundle(tiny_backing_bundle).manifest["backing"]["ranges"]
    tokens, _ = load_split(tiny_parts_corpus, "train")
    assert ranges == [list(r) for r in PartsCodec().pitch_ranges(tokens)]
    assert all(30 <= low < high <= 90 for low, high in ranges)  # a chorale's voices
