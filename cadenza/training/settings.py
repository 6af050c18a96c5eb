"""Filling any trainer's config dataclass: defaults, then a YAML file, then `--set key=value`.

Every trainer's `load_..._config` is this with its own dataclass and its own checks: a value
is checked against the type of the default it replaces, dotted keys reach nested dataclasses
(`model.d_model=256`), and a frozen nested dataclass is replaced rather than changed.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, TypeVar

from cadenza.errors import ConfigError, read_settings

Settings = TypeVar("Settings")


def coerce_setting(name: str, value: Any, target: Any) -> Any:
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
    if kind is tuple and target:  # a tuple of numbers (channels, strides): YAML gives a list
        if isinstance(value, str):  # --set channels=16,32,64
            value = [item.strip() for item in value.split(",") if item.strip()]
        if not isinstance(value, list | tuple):
            raise ConfigError(name, f"expected a list, got {value!r}")
        return tuple(coerce_setting(f"{name}[{i}]", v, target[0]) for i, v in enumerate(value))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(name, f"expected {kind.__name__}, got {value!r}")
    if kind is float and not math.isfinite(value):
        raise ConfigError(name, f"must be a finite number, got {value!r}")
    if kind in (int, float) and value < 0:
        raise ConfigError(name, f"must not be negative, got {value!r}")
    return value


def apply_settings(obj: Any, values: dict[str, Any], prefix: str = "") -> None:
    """Each of `values` onto the dataclass `obj`, in place; nested mappings reach nested
    dataclasses. An unknown key is a ConfigError that lists the known ones."""
    for key, value in values.items():
        setattr(obj, key, _setting(obj, key, value, prefix))


def _setting(obj: Any, key: str, value: Any, prefix: str) -> Any:
    """The checked new value of `obj.key`."""
    names = {f.name for f in dataclasses.fields(obj)}
    name = f"{prefix}{key}"
    if key not in names:
        raise ConfigError(name, f"unknown setting (known: {', '.join(sorted(names))})")
    current = getattr(obj, key)
    if not dataclasses.is_dataclass(current):
        return coerce_setting(name, value, current)
    if not isinstance(value, dict):
        raise ConfigError(name, f"expected a mapping, got {value!r}")
    if current.__dataclass_params__.frozen:  # type: ignore[attr-defined]
        changes = {k: _setting(current, k, v, f"{name}.") for k, v in value.items()}
        return dataclasses.replace(current, **changes)
    apply_settings(current, value, prefix=f"{name}.")
    return current


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
        apply_settings(config, nested)


def read_kind(path: str | Path | None) -> tuple[dict[str, Any], Any]:
    """The YAML file's settings (none without a file) and the model kind it names, if any."""
    values = read_settings(Path(path)) if path is not None else {}
    return values, values.get("kind")


def fill_settings(
    config: Settings,
    path: str | Path | None,
    overrides: list[str] | None,
    kind: str | None = None,
) -> Settings:
    """`config` (the defaults) with the YAML file at `path`, then each `key=value`, applied.
    With `kind`, a file that names another kind is refused."""
    values, named = read_kind(path)
    if kind is not None and named is not None and named != kind:
        raise ConfigError("kind", f"{path} is for {named!r}, not {kind!r}")
    apply_settings(config, values)
    apply_overrides(config, overrides)
    return config


def require_at_least_one(config: Any, *names: str) -> None:
    """A ConfigError for the first of `names` below 1 (a count: batch size, steps...)."""
    for name in names:
        if getattr(config, name) < 1:
            raise ConfigError(name, "must be at least 1")
