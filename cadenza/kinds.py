"""The registry of model kinds: for each kind, where its pieces live, in one place.

A kind is what `cadenza train NAME` trains and what a bundle's `plugin` field names. Each
declares its training config loader, its trainer, its exporter, the runtime class its bundles
run under, its evaluator and the live mode it plays in. The CLI, `cadenza export`,
`cadenza live` and `cadenza eval` ask this registry; none of them decides a kind by itself.

Pieces are named as "module:attribute" strings and imported only when asked for: the
registry must be importable by the runtime (`cadenza live` on a machine without torch), and
most pieces import torch. Third-party packages add kinds under the entry-point group
`cadenza.kinds` (a `ModelKind`), or a runtime plugin alone under `cadenza.plugins`.

The roles' signatures:
- config: `(path: str | None, overrides: list[str]) -> config` (a dataclass; `data`, `out`,
  `device` are among the overrides the CLI passes as `KEY=VALUE`)
- trainer: `(config, *, resume: bool, progress: bool) -> dict` (the final figures)
- exporter: `(checkpoint: dict, out_dir, name: str | None) -> Path` (the bundle written)
- runtime: a class built from a bundle (a `Generator` for the kinds that play)
- evaluator: `(bundle, out: Path, request: cadenza.eval.request.EvalRequest) -> None`
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Literal

from cadenza.errors import CadenzaError, ConfigError

KINDS_GROUP = "cadenza.kinds"
PLUGINS_GROUP = "cadenza.plugins"
LiveModeName = Literal["call-response", "backing"]
ROLES = ("config", "trainer", "exporter", "runtime", "evaluator")


@dataclass(frozen=True)
class ModelKind:
    """One model kind and where each of its pieces lives ("module:attribute", or None where
    the kind has no such piece)."""

    name: str
    summary: str
    config: str | None = None
    trainer: str | None = None
    exporter: str | None = None
    runtime: str | None = None
    evaluator: str | None = None
    live: LiveModeName | None = None  # the `cadenza live` mode its bundles play in; None: not live

    def piece(self, role: str) -> Any:
        """The piece that plays `role`, imported now; a missing one is a one-line error."""
        if role not in ROLES:
            raise ValueError(f"no role {role!r} (roles: {', '.join(ROLES)})")
        where = getattr(self, role)
        if where is None:
            raise CadenzaError(f"model kind {self.name!r} has no {role}")
        return load_attribute(where)


def load_attribute(where: str) -> Any:
    """`module:attribute` (the attribute may be dotted), imported."""
    module_name, _, attribute = where.partition(":")
    value: Any = importlib.import_module(module_name)
    for part in attribute.split(".") if attribute else ():
        value = getattr(value, part)
    return value


EVENTS = "cadenza.eval.report:evaluate_events"

BUILT_IN: tuple[ModelKind, ...] = (
    ModelKind(
        "performance-rnn", "Magenta's Performance RNN: an event LSTM",
        config="cadenza.training.config:load_performance_rnn_config",
        trainer="cadenza.training.loop:train",
        exporter="cadenza.export.performance_rnn:export_performance_rnn",
        runtime="cadenza.plugins.performance_rnn:PerformanceRNN",
        evaluator=EVENTS, live="call-response",
    ),
    ModelKind(
        "transformer", "a Music Transformer with relative attention and a KV cache",
        config="cadenza.training.config:load_transformer_config",
        trainer="cadenza.training.loop:train",
        exporter="cadenza.export.transformer:export_transformer",
        runtime="cadenza.plugins.transformer:MusicTransformer",
        evaluator=EVENTS, live="call-response",
    ),
    ModelKind(
        "backing", "a Music Transformer over parts on a grid: backing parts under a player",
        config="cadenza.training.config:load_backing_config",
        trainer="cadenza.training.loop:train",
        exporter="cadenza.export.transformer:export_transformer",
        runtime="cadenza.plugins.backing:BackingTransformer",
        evaluator="cadenza.eval.backing:evaluate", live="backing",
    ),
    ModelKind(
        "vae", "an LSTM VAE over bar-aligned piano rolls: continuation, variation, interpolation",
        config="cadenza.training.vae:load_vae_config",
        trainer="cadenza.training.vae_train:train",
        exporter="cadenza.export.vae:export_vae",
        runtime="cadenza.plugins.vae:SegmentVAE",
        evaluator=EVENTS, live="call-response",
    ),
    ModelKind(
        "melody-rnn", "Magenta's Melody RNN (basic, lookback, attention): a lead line, bar-aware",
        config="cadenza.training.melody_rnn_train:load_config",
        trainer="cadenza.training.melody_rnn_train:train",
        exporter="cadenza.export.melody_rnn:export_melody_rnn",
        runtime="cadenza.plugins.melody_rnn:MelodyRNN",
        evaluator=EVENTS, live="call-response",
    ),
    ModelKind(
        "codec", "the neural audio codec codec-lm's tokens come from (exported inside codec-lm)",
        config="cadenza.training.codec_train:load_codec_config",
        trainer="cadenza.training.codec_train:train",
    ),
    ModelKind(
        "codec-lm", "a MusicGen-style codec language model: text to audio",
        config="cadenza.training.codec_lm_train:load_codec_lm_config",
        trainer="cadenza.training.codec_lm_train:train",
        exporter="cadenza.export.codec_lm:export_codec_lm",
        runtime="cadenza.plugins.codec_lm:CodecLM",
        evaluator="cadenza.eval.codec_lm:evaluate",
    ),
    ModelKind(
        "style-critic", "which style a piece sounds like (the style column of `cadenza eval`)",
        config="cadenza.training.critic:load_critic_config",
        trainer="cadenza.training.critic:train",
        runtime="cadenza.eval.critic:StyleCritic",
    ),
    ModelKind(
        "instrument-critic", "which instrument a clip sounds like (judges codec-lm's audio)",
        config="cadenza.training.instrument_critic:load_instrument_critic_config",
        trainer="cadenza.training.instrument_critic:train",
        runtime="cadenza.eval.audio:InstrumentCritic",
    ),
)

_registered: dict[str, ModelKind] = {}


def register_kind(kind: ModelKind) -> None:
    """Add a kind at run time (a notebook, a test); a package uses the entry-point group."""
    _registered[kind.name] = kind


def unregister_kind(name: str) -> None:
    _registered.pop(name, None)


def all_kinds() -> dict[str, ModelKind]:
    """Every kind by name: the built-in ones, those installed packages declare, and those
    registered at run time (later ones take a name over)."""
    kinds = {kind.name: kind for kind in BUILT_IN}
    for entry in entry_points(group=KINDS_GROUP):
        declared = entry.load()
        if isinstance(declared, ModelKind):
            kinds[declared.name] = declared
    for entry in entry_points(group=PLUGINS_GROUP):  # a runtime plugin alone: it plays events
        kinds.setdefault(entry.name, ModelKind(entry.name, f"plugin {entry.value}",
                                               runtime=entry.value, live="call-response"))
    kinds.update(_registered)
    return kinds


def get_kind(name: str, *, field: str = "kind") -> ModelKind:
    """The kind called `name`; an unknown one is a one-line error naming `field`."""
    kinds = all_kinds()
    if name not in kinds:
        raise ConfigError(field, f"unknown model kind {name!r} (known: {', '.join(kinds)})")
    return kinds[name]


def kinds_with(role: str) -> list[str]:
    """The names of the kinds that have a piece for `role` (e.g. what `cadenza train` takes)."""
    return [name for name, kind in all_kinds().items() if getattr(kind, role) is not None]


def kind_of_checkpoint(checkpoint: object) -> str | None:
    """The kind a training checkpoint holds. Runs made before the backing was a kind of its
    own recorded "transformer" for a model over parts: their representation says which."""
    if not isinstance(checkpoint, dict):
        return None
    kind = checkpoint.get("kind")
    representation = checkpoint.get("representation") or {}
    if kind == "transformer" and representation.get("kind") == "parts":
        return "backing"
    return kind
