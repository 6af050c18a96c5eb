"""Training configuration: a dataclass, filled from a small YAML file and `--set key=value`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cadenza.errors import ConfigError, read_settings


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


MODEL_CONFIGS: dict[str, type] = {"performance-rnn": ModelConfig, "transformer": TransformerConfig}


@dataclass
class TrainConfig:
    kind: str = "performance-rnn"  # which model: a key of MODEL_CONFIGS
    data: str = "data/corpus/music21-bach"  # a directory written by `cadenza corpus prepare`
    out: str = "runs/performance-rnn"  # checkpoints, metrics.jsonl
    model: Any = field(default_factory=ModelConfig)
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

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _coerce(name: str, value: Any, target: Any) -> Any:
    """Check a YAML/CLI value against the type of the default it replaces."""
    kind = type(target)
    if isinstance(value, str) and kind in (int, float):
        try:
            value = kind(value)  # "3e-4", "12" from --set (YAML 1.1 reads 3e-4 as a string)
        except ValueError:
            pass
    elif isinstance(value, str) and kind is bool:
        value = {"true": True, "false": False}.get(value.lower(), value)
    if kind is list:
        if isinstance(value, str):  # --set model.styles=bach,folk
            value = [item.strip() for item in value.split(",") if item.strip()]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(name, f"expected a list of names, got {value!r}")
        return value
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(name, f"expected {kind.__name__}, got {value!r}")
    if kind in (int, float) and value < 0:
        raise ConfigError(name, f"must not be negative, got {value!r}")
    return value


def _apply(obj: Any, values: dict[str, Any], prefix: str = "") -> None:
    names = {f.name for f in dataclasses.fields(obj)}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if key not in names:
            raise ConfigError(name, f"unknown setting (known: {', '.join(sorted(names))})")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(name, f"expected a mapping, got {value!r}")
            _apply(current, value, prefix=f"{name}.")
        else:
            setattr(obj, key, _coerce(name, value, current))


def apply_overrides(config: Any, overrides: list[str] | None) -> None:
    """Each `key=value` of the command line onto `config`; dotted keys reach nested fields
    (`model.d_model=256`), values are coerced to the field's type."""
    for item in overrides or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(item, "expected key=value")
        nested: dict[str, Any] = {}
        cursor = nested
        parts = key.split(".")
        for part in parts[:-1]:
            cursor = cursor.setdefault(part, {})
        cursor[parts[-1]] = raw
        _apply(config, nested)


def load_config(
    path: str | Path | None = None, overrides: list[str] | None = None, kind: str | None = None
) -> TrainConfig:
    """Defaults, then the YAML file, then each `key=value` (dotted keys reach nested fields).

    `kind` (the model named on the command line) picks the model's settings; a file that
    names another kind is refused.
    """
    values = read_settings(Path(path)) if path is not None else {}
    named = values.get("kind", kind or "performance-rnn")
    if kind is not None and named != kind:
        raise ConfigError("kind", f"{path} is for {named!r}, not {kind!r}")
    if not isinstance(named, str) or named not in MODEL_CONFIGS:
        raise ConfigError("kind", f"unknown model {named!r} (known: {', '.join(MODEL_CONFIGS)})")
    config = TrainConfig(kind=named, model=MODEL_CONFIGS[named](), out=f"runs/{named}")
    _apply(config, values)
    apply_overrides(config, overrides)
    if config.seq_len < 2:
        raise ConfigError("seq_len", "must be at least 2")
    if config.batch_size < 1:
        raise ConfigError("batch_size", "must be at least 1")
    return config
