"""Typed manifest sections: a part of a bundle's manifest.yaml declared once, as a dataclass.

A kind's exporter writes its section with `to_dict`; its runtime reads it back with
`from_dict`, which checks every field's type and range in one pass and refuses a bad one with
a one-line BundleError naming the file and the dotted field (`model.num_heads`). A manifest is
untrusted data (a bundle from someone else): sizes are bounded here, before anything is
allocated from them. A field a section declares with a default may be absent (a manifest
written before the field existed gets the default); fields a section does not declare are
ignored, or kept by a section that has an `extra` field (a model's training
config: provenance the runtime does not read, written back as it came).

Field types understood: bool, int, float, str, a nested Section, `X | None`, `tuple[X, ...]`,
`tuple[X, Y]`, `dict[str, X]` and Any (taken as it is). Limits given by `setting` apply to
every number or string inside a field (each pitch of a list of ranges).
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import MISSING, dataclass, field
from pathlib import Path
from typing import Any, Self

from cadenza.errors import BundleError
from cadenza.events import NUM_PITCHES, PerformanceCodec

LIMITS = "cadenza.limits"  # the dataclass field metadata key that holds a field's Limits
MAX_SIZE = 1 << 20  # the largest size (a vocabulary, a dimension) any manifest may declare


class FieldError(ValueError):
    """A problem with one field of a section, named by its dotted path within the section;
    `from_dict` adds the file."""

    def __init__(self, name: str, problem: str):
        super().__init__(f"field '{name}' {problem}")
        self.name, self.problem = name, problem


@dataclass(frozen=True)
class Limits:
    """The values a field accepts: numbers in [low, high] (or above `above`, exclusive), a
    string or number among `choices`."""

    low: float | None = None
    high: float | None = None
    above: float | None = None
    choices: tuple[Any, ...] | None = None

    def describe(self) -> str:
        if self.choices is not None:
            return ", ".join(repr(c) for c in self.choices)
        lower = f"above {self.above}" if self.above is not None else (
            f"at least {self.low}" if self.low is not None else "")
        upper = f"at most {self.high}" if self.high is not None else ""
        if self.low is not None and self.high is not None:
            return f"in {self.low}..{self.high}"
        return " and ".join(part for part in (lower, upper) if part)

    def admits(self, value: Any) -> bool:
        if self.choices is not None:
            return value in self.choices
        return ((self.low is None or value >= self.low)
                and (self.high is None or value <= self.high)
                and (self.above is None or value > self.above))


def setting(default: Any = MISSING, *, low: float | None = None, high: float | None = None,
            above: float | None = None, choices: tuple[Any, ...] | None = None,
            factory: Any = MISSING) -> Any:
    """A section field with its limits; without a default (or `factory`) it is required."""
    metadata = {LIMITS: Limits(low, high, above, choices)}
    if factory is not MISSING:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def size(default: Any = MISSING, *, high: int = MAX_SIZE) -> Any:
    """A positive size (a dimension, a count of layers): 1..high."""
    return setting(default, low=1, high=high)


def joined(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


@dataclass(frozen=True, kw_only=True)
class Section:
    """A mapping of typed fields in a manifest. Subclasses are frozen dataclasses; a
    cross-field rule goes in `check` (raise FieldError with the field's name in the section).
    A section with a field `extra: dict[str, Any]` keeps the keys it does not declare there."""

    @classmethod
    def from_dict(cls, data: Any, where: str | Path, path: str = "") -> Self:
        """The section read from `data` (found at `path` in the manifest at `where`), checked;
        anything wrong is a one-line BundleError naming the file and the field."""
        try:
            return cls.parse(data, path)
        except FieldError as error:
            raise BundleError(where, str(error)) from None

    @classmethod
    def parse(cls, data: Any, path: str = "") -> Self:
        """As from_dict, raising FieldError (for a section nested in another)."""
        if not isinstance(data, dict):
            raise FieldError(path or "(manifest)", f"should be a mapping, got {data!r:.60}")
        hints = typing.get_type_hints(cls)
        values: dict[str, Any] = {}
        declared = set()
        for item in dataclasses.fields(cls):
            declared.add(item.name)
            if item.name == "extra":
                continue
            name = joined(path, item.name)
            if item.name not in data:
                if item.default is MISSING and item.default_factory is MISSING:
                    raise FieldError(name, "is missing")
                continue
            values[item.name] = convert(data[item.name], hints[item.name], name,
                                        item.metadata.get(LIMITS))
        if "extra" in declared:
            values["extra"] = {k: v for k, v in data.items() if k not in declared}
        section = cls(**values)
        try:
            section.check()
        except FieldError as error:
            raise FieldError(joined(path, error.name), error.problem) from None
        return section

    def check(self) -> None:
        """Rules across fields (a part count and the length of a per-part list)."""

    def checked(self) -> Self:
        """This section as a reader will see it, checked (an exporter's own values: what a
        bundle is written with must be what its runtime accepts); FieldError if not."""
        return self.parse(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        """Plain YAML-ready values: lists for tuples; a field left at None is left out."""
        out: dict[str, Any] = {}
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if item.name != "extra" and value is not None:
                out[item.name] = plain(value)
        return {**out, **getattr(self, "extra", {})}  # what it did not declare, as it came


def plain(value: Any) -> Any:
    if isinstance(value, Section):
        return value.to_dict()
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


TYPE_NAMES = {bool: "a boolean", int: "an int", float: "a number", str: "a string"}


def convert(value: Any, hint: Any, name: str, limits: Limits | None) -> Any:
    """`value` as type `hint`, its limits checked; a FieldError naming `name` if not."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return convert(value, inner, name, limits)
    if isinstance(hint, type) and issubclass(hint, Section):
        return hint.parse(value, name)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise FieldError(name, f"should be a list, got {value!r:.60}")
        if len(args) == 2 and args[1] is Ellipsis:
            kinds = [args[0]] * len(value)
        elif len(value) != len(args):
            raise FieldError(name, f"should be a list of {len(args)}, got {value!r:.60}")
        else:
            kinds = list(args)
        return tuple(convert(v, k, f"{name}[{i}]", limits)
                     for i, (v, k) in enumerate(zip(value, kinds, strict=True)))
    if origin is dict:
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise FieldError(name, f"should be a mapping of names, got {value!r:.60}")
        return {k: convert(v, args[1], joined(name, k), limits) for k, v in value.items()}
    return scalar(value, hint, name, limits)


def scalar(value: Any, hint: type, name: str, limits: Limits | None) -> Any:
    wanted = TYPE_NAMES[hint]
    ok = (isinstance(value, bool) if hint is bool
          else isinstance(value, hint) and not isinstance(value, bool) if hint in (int, str)
          else isinstance(value, int | float) and not isinstance(value, bool)
          and math.isfinite(value))
    if ok and hint is float:
        value = float(value)
    if ok and (limits is None or limits.admits(value)):
        return value
    if limits is not None and limits.choices is not None:
        raise FieldError(name, f"is {value!r:.60}, not {limits.describe()}")
    bounds = f" {limits.describe()}" if limits is not None and limits.describe() else ""
    raise FieldError(name, f"should be {wanted}{bounds}, got {value!r:.60}")


MAX_STYLE_GUIDANCE = 10.0  # a transformer's sampling.style_guidance


@dataclass(frozen=True, kw_only=True)
class Sampling(Section):
    """The sampling knobs' starting values (the live knobs start here)."""

    temperature: float = setting(1.0, low=0.0, high=10.0)
    top_k: int = setting(0, low=0, high=MAX_SIZE)  # 0: no limit
    top_p: float = setting(1.0, above=0.0, high=1.0)  # 1: no nucleus cut; 0 would keep nothing
    # Event plugins (cadenza.plugins.voices): notes sounding at once; 0 or absent (a bundle
    # made before the field was written): no limit.
    max_voices: int | None = setting(None, low=0, high=NUM_PITCHES)


@dataclass(frozen=True, kw_only=True)
class PerformanceRepresentation(Section):
    """Performance events (cadenza.events): what performance-rnn, transformer and the style
    critic read and write."""

    kind: str = setting("performance", choices=("performance",))
    steps_per_second: int = size(100, high=10_000)
    max_shift_steps: int = size(100, high=10_000)
    velocity_bins: int = size(32, high=127)

    @classmethod
    def of(cls, codec: PerformanceCodec) -> Self:
        return cls(steps_per_second=codec.steps_per_second,
                   max_shift_steps=codec.max_shift_steps, velocity_bins=codec.velocity_bins)

    def codec(self) -> PerformanceCodec:
        return PerformanceCodec(steps_per_second=self.steps_per_second,
                                max_shift_steps=self.max_shift_steps,
                                velocity_bins=self.velocity_bins)


@dataclass(frozen=True, kw_only=True)
class AttentionModel(Section):
    """A transformer's dimensions, which size its key/value cache. The rest of its training
    config (d_ff, dropout...) is provenance, kept as written."""

    d_model: int = size(high=65_536)
    num_layers: int = size(high=256)
    num_heads: int = size(high=256)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def head_dim(self) -> int:
        return self.d_model // self.num_heads

    def check(self) -> None:
        if self.d_model % self.num_heads:
            raise FieldError("d_model", f"({self.d_model}) should be a multiple of num_heads "
                                        f"({self.num_heads})")


@dataclass(frozen=True, kw_only=True)
class PluginManifest(Section):
    """What every generator plugin reads: the starting values of its knobs. A plugin's own
    manifest section extends it."""

    sampling: Sampling = field(default_factory=Sampling)
