"""The codec LM: its input layout, its loss over pattern steps, its training on real codes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from cadenza.errors import CadenzaError
from cadenza.plugins.codebook_patterns import get_pattern
from cadenza.training.codec_lm import CodecLM, CodecLMConfig, pattern_loss
from cadenza.training.codec_lm_train import drop_words, load_codec_lm_config
from cadenza.training.loop import load_checkpoint

TINY = CodecLMConfig(codebook_size=16, d_model=32, num_layers=2, num_heads=2, d_ff=64,
                     max_distance=32, dropout=0.0)


def patterned(frames: int, seed: int = 0) -> torch.Tensor:
    shape = (TINY.num_codebooks, frames)
    codes = np.random.default_rng(seed).integers(0, TINY.codebook_size, shape)
    return torch.from_numpy(get_pattern("delay", TINY.num_codebooks).build(codes, TINY.special))


def test_logits_have_a_head_per_codebook_and_a_position_per_step():
    model = CodecLM(TINY).eval()
    seq = patterned(10)[None]
    logits, _ = model(seq, torch.zeros(1, TINY.text_dim))
    assert logits.shape == (1, TINY.num_codebooks, seq.shape[-1], TINY.codebook_size)


def test_step_s_is_predicted_from_steps_before_it_only():
    model = CodecLM(TINY).eval()
    seq = patterned(10)[None]
    text = torch.randn(1, TINY.text_dim)
    changed = seq.clone()
    changed[:, :, 7] = (changed[:, :, 7] + 1) % TINY.codebook_size
    a, _ = model(seq, text)
    b, _ = model(changed, text)
    torch.testing.assert_close(a[:, :, :8], b[:, :, :8])  # steps 0..7 do not see step 7
    assert not torch.allclose(a[:, :, 8:], b[:, :, 8:])


def test_the_text_conditions_every_step():
    model = CodecLM(TINY).eval()
    seq = patterned(6)[None]
    a, _ = model(seq, torch.randn(1, TINY.text_dim))
    b, _ = model(seq, torch.zeros(1, TINY.text_dim))
    assert not torch.allclose(a[:, :, -1], b[:, :, -1])


def test_loss_ignores_the_special_tokens():
    seq = patterned(5)[None]
    mask = torch.from_numpy(get_pattern("delay", 4).mask(5))[None]
    logits = torch.zeros(1, 4, seq.shape[-1], TINY.codebook_size)
    # Confident and wrong wherever the pattern holds the special token: no effect on the loss.
    logits[..., 0] = torch.where(mask, 0.0, 50.0)
    np.testing.assert_allclose(pattern_loss(logits, seq, mask).numpy(),
                               np.full(4, np.log(TINY.codebook_size)), rtol=1e-5)


def test_word_dropout_keeps_order_and_at_least_one_word():
    rng = np.random.default_rng(0)
    caption = "a church organ playing a slow Bach chorale"
    for _ in range(50):
        dropped = drop_words(caption, 0.9, rng).split()
        assert dropped and all(w in caption.split() for w in dropped)
    assert drop_words(caption, 0.0, rng) == caption


@pytest.mark.parametrize(("setting", "field"), [
    ("micro_batches=3", "micro_batches"),
    ("model.pattern=zigzag", "zigzag"),
    ("batch_size=0", "batch_size"),
])
def test_bad_settings_name_the_field(setting, field):
    with pytest.raises(CadenzaError, match=field):
        load_codec_lm_config(None, [setting])


def test_training_writes_checkpoints_and_held_out_figures(tiny_codec_lm_run):
    checkpoint = load_checkpoint(tiny_codec_lm_run / "best.pt")  # weights_only
    assert checkpoint["kind"] == "codec-lm"
    for split in ("valid", "test"):
        figures = checkpoint[split]
        assert len(figures["text"]) == len(figures["no_text"]) == 4
        assert all(0 < x < 10 for x in figures["text"])
    # The caption of a clip of another instrument, scored beside the clip's own.
    assert len(checkpoint["test"]["other_instrument"]) == 4
    metrics = [json.loads(line) for line in (tiny_codec_lm_run / "metrics.jsonl").open()]
    assert [m["step"] for m in metrics] == [10, 20]
    data = np.load(tiny_codec_lm_run / "data.npz")
    # Each clip: its caption and two word-dropped ones, embedded (unit length: MiniLM's norm).
    assert data["train_text"].shape[1:] == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(data["train_text"], axis=-1), 1.0, atol=1e-3)
    assert data["train_codes"].max() < 16


def test_the_codes_are_built_again_for_another_codec(tiny_codec_lm_run, tiny_codec_run, tmp_path):
    from cadenza.training.codec_lm_train import dataset_is_current

    data = tiny_codec_lm_run / "data.npz"
    config = load_codec_lm_config(None, [f"codec={tiny_codec_run / 'best.pt'}"])
    assert dataset_is_current(data, config)
    retrained = load_checkpoint(tiny_codec_run / "best.pt")
    retrained["step"] += 1  # the same codec trained further: other codes
    torch.save(retrained, tmp_path / "best.pt")
    other = load_codec_lm_config(None, [f"codec={tmp_path / 'best.pt'}"])
    assert not dataset_is_current(data, other)
    assert not dataset_is_current(tmp_path / "none.npz", config)
