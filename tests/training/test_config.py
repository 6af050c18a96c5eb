"""Training settings from YAML and --set, with one-line errors naming the field."""

from __future__ import annotations

import pytest

from cadenza.errors import ConfigError
from cadenza.training.config import load_config


def test_yaml_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("lr: 0.001\nmodel:\n  hidden_size: 64\n")
    config = load_config(path, ["model.num_layers=3", "lr=3e-4", "device=cuda"])
    assert (config.lr, config.model.hidden_size, config.model.num_layers) == (3e-4, 64, 3)
    assert config.device == "cuda"


@pytest.mark.parametrize(
    "yaml_text, field",
    [
        ("lr: fast\n", "lr"),
        ("model:\n  hidden_size: 1.5\n", "model.hidden_size"),
        ("batch_size: -4\n", "batch_size"),
        ("colour: blue\n", "colour"),
        ("model: 3\n", "model"),
        ("lr: [1, 2\n", "c.yaml"),
        ("- a list\n", "c.yaml"),
    ],
)
def test_bad_values_name_the_field(tmp_path, yaml_text, field):
    path = tmp_path / "c.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(error.value).startswith(field) or field in str(error.value).split(":")[0]
    assert "\n" not in str(error.value)


def test_bad_override_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="expected key=value"):
        load_config(None, ["lr"])
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "missing.yaml")


def test_the_kind_picks_the_model_settings(tmp_path):
    config = load_config(None, ["model.num_heads=8", "model.styles=bach,folk"], kind="transformer")
    assert config.kind == "transformer" and config.out == "runs/transformer"
    assert (config.model.num_heads, config.model.styles) == (8, ["bach", "folk"])
    with pytest.raises(ConfigError, match="model.num_heads"):
        load_config(None, ["model.num_heads=8"], kind="performance-rnn")


def test_a_file_for_another_model_is_refused(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("kind: transformer\n")
    with pytest.raises(ConfigError, match="^kind: .* is for 'transformer', not 'performance-rnn'"):
        load_config(path, kind="performance-rnn")
    path.write_text("kind: [1]\n")
    with pytest.raises(ConfigError, match="^kind: unknown model"):
        load_config(path)
