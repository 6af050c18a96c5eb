"""init_from: a run that starts from a trained transformer's weights (a bundle or a checkpoint),
its styles matched by name, and a clear error for anything else."""

from __future__ import annotations

import dataclasses

import numpy as np
import onnxruntime as ort
import pytest
import torch

from cadenza.bundle import load_bundle
from cadenza.errors import CadenzaError, ConfigError
from cadenza.training.config import TransformerConfig, load_config, load_transformer_config
from cadenza.training.init_from import load_initial_weights
from cadenza.training.loop import load_checkpoint, train
from cadenza.training.transformer import MusicTransformer, TransformerPrefill
from tests.helpers import TINY_TRANSFORMER


def config_of(run) -> TransformerConfig:
    return TransformerConfig(**load_checkpoint(run / "best.pt")["config"]["model"])


def test_a_bundle_reads_back_to_its_own_logits_under_new_styles(tiny_transformer_bundle):
    source = config_of_bundle(tiny_transformer_bundle)
    model = MusicTransformer(dataclasses.replace(source, styles=["any", "bach", "folk"]))
    load_initial_weights(model, tiny_transformer_bundle)
    embed = model.embed.weight
    any_row, bach_row, folk_row = (embed[source.vocab_size + i] for i in range(3))
    assert torch.equal(folk_row, any_row)  # a style the source never saw starts as "any"
    assert bach_row.shape == any_row.shape
    tokens = np.concatenate([[model.style_token("bach")], np.arange(40) % 300])
    tokens = tokens.reshape(1, -1).astype(np.int64)
    graph = load_bundle(tiny_transformer_bundle).graph_bytes("prefill")
    expected = ort.InferenceSession(graph).run(["logits"], {"tokens": tokens})[0]
    with torch.no_grad():
        got = TransformerPrefill(model.eval())(torch.from_numpy(tokens))[0].numpy()
    assert np.abs(got - expected).max() < 1e-3


def config_of_bundle(bundle) -> TransformerConfig:
    fields = TransformerConfig.__dataclass_fields__
    return TransformerConfig(**{k: v for k, v in load_bundle(bundle).manifest["model"].items()
                                if k in fields})


def test_a_checkpoint_loads_as_it_is(tiny_transformer_run):
    checkpoint = load_checkpoint(tiny_transformer_run / "best.pt")
    model = MusicTransformer(config_of(tiny_transformer_run))
    load_initial_weights(model, tiny_transformer_run / "best.pt")
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, checkpoint["model"][name]), name


def test_a_run_with_init_from_starts_where_the_source_ends(tiny_corpus, tiny_transformer_run,
                                                          tmp_path):
    # One step at a tiny learning rate: the fine-tune's first validation is the source's.
    source = load_checkpoint(tiny_transformer_run / "best.pt")
    config = load_config(None, [f"data={tiny_corpus}", f"out={tmp_path}", "max_steps=1",
                                "lr=1e-7", "min_lr=1e-8", "warmup_steps=0",
                                f"init_from={tiny_transformer_run / 'best.pt'}",
                                *TINY_TRANSFORMER], kind="transformer")
    train(config, progress=False)
    tuned = load_checkpoint(tmp_path / "best.pt")
    assert tuned["valid_nll"] == pytest.approx(source["valid_nll"], abs=2e-3)
    fresh = load_config(None, [f"data={tiny_corpus}", f"out={tmp_path / 'fresh'}", "max_steps=1",
                               "lr=1e-7", "min_lr=1e-8", "warmup_steps=0", *TINY_TRANSFORMER],
                        kind="transformer")
    train(fresh, progress=False)
    assert load_checkpoint(tmp_path / "fresh" / "best.pt")["valid_nll"] > tuned["valid_nll"] + 0.5


def test_another_shape_is_one_line_naming_the_tensor(tiny_transformer_run):
    wider = dataclasses.replace(config_of(tiny_transformer_run), d_model=48, num_heads=2)
    with pytest.raises(CadenzaError, match=r"embed\.weight is \(\d+, 32\) there and \(\d+, 48\)"
                       ) as error:
        load_initial_weights(MusicTransformer(wider), tiny_transformer_run / "best.pt")
    assert "\n" not in str(error.value)


def test_a_bundle_of_another_kind_is_one_line(tiny_bundle, tiny_transformer_run):
    model = MusicTransformer(config_of(tiny_transformer_run))
    with pytest.raises(CadenzaError, match="init_from reads transformer bundles") as error:
        load_initial_weights(model, tiny_bundle)
    assert "\n" not in str(error.value)
    with pytest.raises(CadenzaError, match="no such"):
        load_initial_weights(model, tiny_bundle.parent / "nowhere")


def test_a_missing_source_is_refused_before_any_work(tiny_corpus, tmp_path):
    with pytest.raises(ConfigError, match="init_from") as error:
        load_transformer_config(None, [f"data={tiny_corpus}", f"init_from={tmp_path / 'no.pt'}"])
    assert "\n" not in str(error.value)
