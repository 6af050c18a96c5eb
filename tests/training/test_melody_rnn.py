"""The Melody RNN's three variants train on real tunes (a tiny corpus of music21's tunes)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from cadenza.corpus.token_files import load_split
from cadenza.errors import CadenzaError, ConfigError
from cadenza.melody import MelodyEncoding
from cadenza.training.data import IGNORE
from cadenza.training.melody_rnn import MelodyModelConfig, MelodyRNN
from cadenza.training.melody_rnn_train import event_nll, load_config, train
from cadenza.training.runner import load_checkpoint
from tests.conftest import train_tiny_melody_rnn
from tests.helpers import TINY_MELODY_RNN


@pytest.mark.parametrize("variant", ["basic", "lookback", "attention"])
def test_each_variant_learns_the_tunes(tiny_melody_corpus, tmp_path, variant):
    run = train_tiny_melody_rnn(tiny_melody_corpus, tmp_path / variant, variant)
    metrics = json.loads((run / "metrics.json").read_text())
    checkpoint = load_checkpoint(run / "best.pt")
    assert checkpoint["kind"] == "melody-rnn"
    assert checkpoint["config"]["model"]["variant"] == variant
    assert "optimizer" not in checkpoint  # best.pt is what export reads
    # Better than a uniform guess over the 38 events after 40 steps, and honest figures.
    assert metrics["valid_nll"] < math.log(38) - 0.5
    assert metrics["test_nll"] > 0 and metrics["test_nll_bigram_baseline"] > 0
    log = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [20, 40]


def test_the_event_nll_of_basic_is_its_cross_entropy():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 38)
    classes = torch.randint(0, 38, (2, 6))
    labels = classes[:, 1:].clone()
    labels[1, 3:] = IGNORE
    expected = torch.nn.functional.cross_entropy(logits.reshape(-1, 38), labels.reshape(-1),
                                                 ignore_index=IGNORE, reduction="sum")
    got = event_nll(logits, classes, labels, MelodyEncoding(), "basic")
    assert float(got) == pytest.approx(float(expected), rel=1e-6)


def test_lookback_event_nll_counts_a_repeat_label_with_its_class(tiny_melody_corpus):
    """A repeated event may come as its class or as a "repeat" label: its probability is
    their sum, never less than the label's alone."""
    encoding = MelodyEncoding()
    tokens, offsets = load_split(tiny_melody_corpus, "train")
    melody = np.asarray(tokens[offsets[0] : offsets[1]], np.int64)
    labels = torch.from_numpy(encoding.labels(melody, "lookback"))[None]
    torch.manual_seed(0)
    logits = torch.randn(1, labels.size(1), 40)
    label_nll = torch.nn.functional.cross_entropy(logits[0], labels[0], reduction="sum")
    events = event_nll(logits, torch.from_numpy(melody)[None], labels, encoding, "lookback")
    assert float(events) < float(label_nll)


def test_a_run_stopped_early_resumes_in_the_same_schedule(tiny_melody_corpus, tmp_path):
    overrides = [f"data={tiny_melody_corpus}", f"out={tmp_path}", *TINY_MELODY_RNN]
    first = train(load_config(None, [*overrides, "stop_at=20"]), progress=False)
    assert first["steps"] == 20  # stop_at ends it, with its held-out figures
    train(load_config(None, overrides), resume=True, progress=False)
    log = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [20, 40]


def test_resume_refuses_another_variant(tiny_melody_corpus, tmp_path):
    overrides = [f"data={tiny_melody_corpus}", f"out={tmp_path}", *TINY_MELODY_RNN,
                 "max_steps=20"]
    train(load_config(None, overrides), progress=False)
    with pytest.raises(CadenzaError, match="model.variant"):
        train(load_config(None, [*overrides, "variant=basic"]), resume=True, progress=False)


def test_bad_settings_name_the_field(tiny_melody_corpus, tmp_path, tiny_corpus):
    with pytest.raises(ConfigError, match="variant"):
        load_config(None, [f"data={tiny_melody_corpus}", "variant=transformer"])
    with pytest.raises(ConfigError, match="holds no melodies"):
        load_config(None, [f"data={tiny_corpus}"])
    with pytest.raises(ConfigError, match="not a prepared corpus"):
        load_config(None, [f"data={tmp_path}"])


def test_the_attention_window_slides_over_the_last_outputs():
    model = MelodyRNN(MelodyModelConfig(variant="attention", hidden_size=8, num_layers=1,
                                        attention_length=4)).eval()
    x = torch.randn(1, 6, model.input_size)
    with torch.no_grad():
        whole, state = model(x)
        stepped, step_state = [], model.initial_state(1)
        for t in range(6):
            out, step_state = model(x[:, t : t + 1], step_state)
            stepped.append(out)
    assert torch.allclose(whole, torch.cat(stepped, dim=1), atol=1e-6)
    assert state[3].shape == (1, 4, 8)
    assert torch.equal(state[3][:, -1], step_state[3][:, -1])
