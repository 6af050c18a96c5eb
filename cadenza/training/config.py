"""Training configuration: a dataclass, filled from a small YAML file and `--set key=value`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cadenza.corpus.token_files import METADATA, corpus_representation
from cadenza.errors import ConfigError
from cadenza.training.settings import apply_overrides, apply_settings, read_kind


@dataclass
class ModelConfig:
    """The event LSTM (performance-rnn)."""

    vocab_size: int = 388
    embed_dim: int = 128
    hidden_size: int = 256
    num_layers: int = 2
    dropout: float = 0.1


@dataclass
class TransformerConfig:
    """The Music Transformer. Inputs are the 388 events plus one conditioning token per style
    (index 0 of `styles` is "any": untagged); outputs are the 388 events only."""

    vocab_size: int = 388
    d_model: int = 128
    num_layers: int = 4
    num_heads: int = 4
    d_ff: int = 512
    max_distance: int = 1024  # relative distances 0..max_distance-1; farther ones share the last
    dropout: float = 0.1
    style_dropout: float = 0.1  # share of training windows conditioned on "any" instead
    styles: list[str] = field(default_factory=lambda: ["any"])


# What `TrainConfig.model` holds: the settings of the model its `kind` names.
EventModelConfig = ModelConfig | TransformerConfig
MODEL_CONFIGS: dict[str, type[EventModelConfig]] = {
    "performance-rnn": ModelConfig,
    "transformer": TransformerConfig,
}


@dataclass
class TrainConfig:
    kind: str = "performance-rnn"  # which model: a key of MODEL_CONFIGS
    data: str = "data/corpus/music21-bach"  # a directory written by `cadenza corpus prepare`
    out: str = "runs/performance-rnn"  # checkpoints, metrics.jsonl
    model: EventModelConfig = field(default_factory=ModelConfig)
    seq_len: int = 256
    batch_size: int = 32
    micro_batches: int = 1  # a batch as micro-batches of similar window length (less padding)
    lr: float = 2e-3
    min_lr: float = 1e-4  # cosine decay floor
    warmup_steps: int = 100
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    max_steps: int = 5000
    stop_at: int = 0  # end this run at this step (0: max_steps): the next run, with --resume,
    # goes on in the same schedule with other settings (e.g. longer windows)
    eval_every: int = 0  # steps between validations; 0 means once per epoch of train data
    seed: int = 1234
    device: str = "cpu"  # cpu | cuda | cuda:N
    threads: int = 0  # torch intra-op threads on CPU; 0 leaves torch's default
    init_from: str = ""  # start from these weights: a transformer bundle or a run's .pt
    # (cadenza/training/init_from.py); the optimizer and schedule start afresh

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def load_config(
    path: str | Path | None = None, overrides: list[str] | None = None, kind: str | None = None
) -> TrainConfig:
    """Defaults, then the YAML file, then each `key=value` (dotted keys reach nested fields).

    `kind` (the model named on the command line) picks the model's settings; a file that
    names another kind is refused.
    """
    values, named = read_kind(path)
    named = named if named is not None else kind or "performance-rnn"
    if kind is not None and named != kind:
        raise ConfigError("kind", f"{path} is for {named!r}, not {kind!r}")
    return _event_config(named, values, overrides)


def _event_config(named: Any, values: dict[str, Any], overrides: list[str] | None) -> TrainConfig:
    if not isinstance(named, str) or named not in MODEL_CONFIGS:
        raise ConfigError("kind", f"unknown model {named!r} (known: {', '.join(MODEL_CONFIGS)})")
    config = TrainConfig(kind=named, model=MODEL_CONFIGS[named](), out=f"runs/{named}")
    apply_settings(config, values)
    apply_overrides(config, overrides)
    if config.seq_len < 2:
        raise ConfigError("seq_len", "must be at least 2")
    if config.batch_size < 1:
        raise ConfigError("batch_size", "must be at least 1")
    return config


# ---- the loaders of `cadenza train KIND` (cadenza.kinds): a config whose corpus is there --
def load_performance_rnn_config(
    path: str | Path | None = None, overrides: list[str] | None = None
) -> TrainConfig:
    return _with_corpus(load_config(path, overrides, kind="performance-rnn"))


def load_transformer_config(
    path: str | Path | None = None, overrides: list[str] | None = None
) -> TrainConfig:
    return _with_corpus(load_config(path, overrides, kind="transformer"))


def load_backing_config(
    path: str | Path | None = None, overrides: list[str] | None = None
) -> TrainConfig:
    """The backing model: a Music Transformer over a parts corpus, so its config (and its
    checkpoint's `kind`) is the transformer's; its file may name either (configs/backing.yaml
    names "transformer")."""
    values, named = read_kind(path)
    if named not in (None, "backing", "transformer"):
        raise ConfigError("kind", f"{path} is for {named!r}, not 'backing'")
    values = {k: v for k, v in values.items() if k != "kind"}
    config = _with_corpus(
        _event_config("transformer", {"out": "runs/backing", **values}, overrides))
    if corpus_representation(config.data).get("kind") != "parts":
        raise ConfigError("data", f"{config.data} holds performance events; the backing model "
                          "trains on parts (`cadenza corpus prepare --representation parts`)")
    return config


def _with_corpus(config: TrainConfig) -> TrainConfig:
    """`config`, once its `data` is a folder (a one-line error before any work, not a missing
    file's deep in the loop)."""
    if not (Path(config.data) / METADATA).is_file():
        raise ConfigError(
            "data",
            f"{config.data} is not a prepared corpus directory "
            "(run `cadenza corpus prepare SOURCE` first)",
        )
    if config.init_from and not Path(config.init_from).exists():
        raise ConfigError("init_from", f"{config.init_from} is neither a run's checkpoint nor "
                          "a bundle (train the model it names first)")
    return config
