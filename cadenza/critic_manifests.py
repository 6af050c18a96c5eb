"""The critics' manifest sections: what cadenza.training's critic trainers write and
cadenza.eval's critics read (cadenza.manifest explains the machinery). No torch here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cadenza.manifest import (
    MAX_SIZE,
    FieldError,
    PerformanceRepresentation,
    Section,
    setting,
    size,
)


@dataclass(frozen=True, kw_only=True)
class StyleCriticModel(Section):
    """The style critic's classes and its window of events (padded with `pad`)."""

    styles: tuple[str, ...]
    window: int = size(high=1 << 16)
    pad: int = setting(low=0, high=MAX_SIZE)  # the padding token
    extra: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        if not self.styles:
            raise FieldError("styles", "should list at least one style")


@dataclass(frozen=True, kw_only=True)
class StyleCriticManifest(Section):
    representation: PerformanceRepresentation = field(default_factory=PerformanceRepresentation)
    model: StyleCriticModel


@dataclass(frozen=True, kw_only=True)
class MelRepresentation(Section):
    """The log-mel front end the instrument critic hears through (cadenza.eval.audio)."""

    kind: str = setting("log-mel", choices=("log-mel",))
    sample_rate: int = size(24_000, high=384_000)
    n_fft: int = size(1024, high=1 << 16)
    hop: int = size(256, high=1 << 16)
    n_mels: int = size(64, high=1024)
    floor: float = setting(1e-5, above=0.0, high=1.0)


@dataclass(frozen=True, kw_only=True)
class InstrumentCriticModel(Section):
    """The instrument critic's classes and its CNN (one 2x pooling in time per block)."""

    instruments: tuple[str, ...]
    crop_seconds: float | None = setting(None, above=0.0, high=3600.0)
    embed_dim: int | None = size(None, high=1 << 16)
    channels: tuple[int, ...] = size(high=1 << 16)
    extra: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        if not self.instruments:
            raise FieldError("instruments", "should list at least one instrument")
        if not 1 <= len(self.channels) <= 16:
            raise FieldError("channels", f"should list 1..16 blocks, got {len(self.channels)}")


@dataclass(frozen=True, kw_only=True)
class InstrumentCriticManifest(Section):
    representation: MelRepresentation
    model: InstrumentCriticModel
