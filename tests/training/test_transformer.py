"""The Music Transformer: skewed relative attention, the cached step, training through the loop."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cadenza.plugins.transformer import KVCache
from cadenza.training.config import TransformerConfig
from cadenza.training.loop import (
    condition,
    load_checkpoint,
    model_from_checkpoint,
    pick_sequences,
)
from cadenza.training.transformer import (
    MusicTransformer,
    TransformerPrefill,
    TransformerStep,
    skew,
)

SMALL = TransformerConfig(d_model=32, num_layers=2, num_heads=2, d_ff=64, max_distance=24,
                          styles=["any", "bach", "folk"])


def small_model(seed: int = 0) -> MusicTransformer:
    torch.manual_seed(seed)
    return MusicTransformer(SMALL).eval()


def direct_relative_scores(q: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """The O(L²·D) definition: for every pair j <= i, q_i · E[min(i - j, R - 1)]."""
    length = q.size(-2)
    out = torch.zeros(*q.shape[:-1], length)
    for i in range(length):
        for j in range(i + 1):
            distance = min(i - j, table.size(1) - 1)
            out[..., i, j] = (q[..., i, :] * table[:, distance]).sum(-1)
    return out


@pytest.mark.parametrize("length", [1, 7, 24, 40])  # 40: distances past the table's end
def test_skewed_relative_scores_equal_the_direct_definition(length):
    attention = small_model().blocks[0].attention
    q = torch.randn(3, SMALL.num_heads, length, SMALL.d_model // SMALL.num_heads)
    fast = attention.relative_scores(q)
    lower = torch.ones(length, length, dtype=torch.bool).tril()
    reference = direct_relative_scores(q, attention.distance.detach())
    assert torch.allclose(fast[..., lower], reference[..., lower], atol=1e-5)


def test_skew_moves_each_distance_column_onto_its_diagonal():
    length = 5
    # Column c holds distance L-1-c: after skewing, [i, j] must read i - j.
    by_column = torch.arange(length - 1, -1, -1).float().expand(length, length)
    skewed = skew(by_column)
    for i in range(length):
        for j in range(i + 1):
            assert skewed[i, j] == i - j


def test_prefill_then_cached_steps_equal_the_full_forward():
    model = small_model()
    tokens = torch.randint(0, 388, (1, 30))
    tokens[0, 0] = model.style_token("bach")
    with torch.no_grad():
        full, _ = model(tokens)
        logits, k, v = TransformerPrefill(model)(tokens[:, :6])
        cache = KVCache(SMALL.num_layers, SMALL.num_heads, SMALL.d_model // SMALL.num_heads, 64)
        cache.fill(k.numpy(), v.numpy())
        assert torch.allclose(logits, full[:, 5], atol=1e-5)
        step = TransformerStep(model)
        for t in range(6, 30):
            logits, k, v = step(tokens[0, t : t + 1], torch.tensor([cache.next_position]),
                                torch.from_numpy(cache.k), torch.from_numpy(cache.v),
                                torch.from_numpy(cache.positions))
            cache.append(k.numpy(), v.numpy())
            assert torch.allclose(logits, full[:, t], atol=1e-5), t


def test_the_style_token_changes_the_prediction():
    model = small_model()
    events = torch.randint(0, 388, (1, 10))
    with torch.no_grad():
        bach, _ = model(torch.cat([torch.tensor([[model.style_token("bach")]]), events], 1))
        folk, _ = model(torch.cat([torch.tensor([[model.style_token("folk")]]), events], 1))
    assert not torch.allclose(bach[:, -1], folk[:, -1])
    assert model.style_token(None) == model.style_token("unknown") == 388


def test_a_tiny_transformer_learns_through_the_training_loop(tiny_transformer_run):
    checkpoint = load_checkpoint(tiny_transformer_run / "best.pt")
    assert checkpoint["kind"] == "transformer"
    assert checkpoint["config"]["model"]["styles"] == ["any", "bach"]  # from the corpus
    # Better than knowing nothing (uniform over 388 events) after 30 steps.
    assert checkpoint["metrics"]["test_nll"] < math.log(388) - 0.5
    model = model_from_checkpoint(checkpoint)
    assert isinstance(model, MusicTransformer)
    assert np.isfinite(checkpoint["valid_nll"])


def test_training_leads_each_window_with_the_token_its_style_is_named_by():
    """Corpus style i ("bach", "folk": the corpus's names) is what the bundle's style knob asks
    for by that name, never "any": a style trained under one token and played under another
    plays an embedding that never learnt anything."""
    model = small_model()
    corpus_styles = np.array([0, 1, 1, 0])  # indexes into the corpus's names: bach, folk
    x = torch.zeros(4, 5, dtype=torch.long)
    c = model.config
    old_dropout, c.style_dropout = c.style_dropout, 0.0
    try:
        led, _ = condition(model, x, x.clone(), corpus_styles)
    finally:
        c.style_dropout = old_dropout
    named = [model.style_token(name) for name in ("bach", "folk", "folk", "bach")]
    assert led[:, 0].tolist() == named
    assert model.style_token(None) not in led[:, 0].tolist()


def test_pick_sequences_keeps_the_chosen_sequences_whole():
    tokens = np.arange(10)
    offsets = np.array([0, 3, 4, 10])
    picked, picked_offsets = pick_sequences(tokens, offsets, np.array([True, False, True]))
    assert picked.tolist() == [0, 1, 2, 4, 5, 6, 7, 8, 9]
    assert picked_offsets.tolist() == [0, 3, 9]
