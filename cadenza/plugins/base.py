"""The Generator contract, and the plugins by name (from the registry of model kinds).

A plugin is built from a bundle. Its state (LSTM h/c, a KV cache, a latent) lives in numpy
arrays owned by the instance, so one process can run several generators side by side.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import onnxruntime as ort

from cadenza.bundle import MANIFEST, Bundle, default_bundle_path, load_bundle
from cadenza.errors import BundleError
from cadenza.events import PerformanceCodec
from cadenza.kinds import all_kinds
from cadenza.manifest import PerformanceRepresentation, PluginManifest
from cadenza.parts import PartsCodec
from cadenza.plugins.sampling import Knobs, sample
from cadenza.plugins.voices import Voices, VoicesState

ORT_DTYPES = {
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(bool)": "bool",
}
Change = tuple[int, int, bool]  # a backing's (part, pitch, True for a note-on)


@dataclass(frozen=True)
class Snapshot:
    """A generator's state as `snapshot` took it: its context (caches, history, latent...)
    and its random state, so that what is sampled after a `restore` is sampled again the
    same way."""

    context: Any
    rng: dict[str, Any]
    voices: VoicesState | None = None  # an event generator's sounding notes


class Generator(abc.ABC):
    """What every plugin offers, whatever it makes. Subclasses set `plugin` and
    `manifest_type` (their manifest section) and derive from one of EventGenerator,
    BackingGenerator or AudioGenerator, which say what comes out of them."""

    plugin: ClassVar[str]
    manifest_type: ClassVar[type[PluginManifest]] = PluginManifest

    def __init__(self, bundle: Bundle, *, seed: int | None = None):
        if bundle.plugin != self.plugin:
            raise BundleError(
                bundle.path, f"field 'plugin' is {bundle.plugin!r}, this is {self.plugin!r}"
            )
        self.bundle = bundle
        # The plugin's manifest section, checked once: what the plugin reads comes from here.
        self.manifest = bundle.section(self.manifest_type)
        defaults = self.manifest.sampling
        self.knobs = Knobs(temperature=defaults.temperature, top_k=defaults.top_k,
                           top_p=defaults.top_p, max_voices=defaults.max_voices or 0)
        self.rng = np.random.default_rng(seed)

    def seed(self, seed: int | None) -> None:
        self.rng = np.random.default_rng(seed)

    style: str | None = None  # the style in force; None is untagged

    @property
    def styles(self) -> list[str]:
        """The styles this generator can be conditioned on (none unless its plugin has them)."""
        return []

    def set_style(self, style: str | None) -> None:
        """Condition what comes next on `style` (None: untagged); an unknown one is refused."""
        if style is not None and style not in self.styles:
            known = ", ".join(self.styles) or "none"
            raise BundleError(self.bundle.path, f"no style {style!r} in this bundle (has: {known})")
        self.style = style

    def set_style_guidance(self, value: float) -> None:
        """Hold generation to the style more closely than the model learnt (1: as learnt).
        Only a plugin with an untagged context to guide against has it."""
        if value != 1.0:
            raise BundleError(self.bundle.path,
                              f"the {self.plugin} plugin has no style guidance (a transformer's)")

    @abc.abstractmethod
    def prime(self, events: Any, conditions: dict[str, Any] | None = None) -> None:
        """Set the context from which generation continues (replacing any earlier one)."""

    @abc.abstractmethod
    def extend(self, events: Any) -> None:
        """Take events into the context without sampling (a player's notes, as played)."""

    @abc.abstractmethod
    def reset(self) -> None:
        """Forget the context."""

    def snapshot(self) -> Snapshot:
        """The generator's state, to `restore` later: generation can run ahead and be
        rewound when a player's note arrives that the look-ahead did not know about."""
        return Snapshot(self.context_state(), self.rng.bit_generator.state)

    def restore(self, state: Snapshot) -> None:
        """Return to a state taken by `snapshot`, random state included."""
        self.restore_context(state.context)
        self.rng.bit_generator.state = state.rng

    @abc.abstractmethod
    def context_state(self) -> Any:
        """The context part of a snapshot (copies of whatever later steps change in place)."""

    @abc.abstractmethod
    def restore_context(self, state: Any) -> None:
        """Return to a context taken by `context_state`."""


class EventGenerator(Generator):
    """Performance events in, performance events out (`codec` says how they are numbered):
    what call-and-response plays and `cadenza generate` continues a primer with."""

    codec: PerformanceCodec
    _voices: Voices | None = None

    @property
    def voices(self) -> Voices:
        """The notes sounding in the context: a plugin's prime, extend and step tell it
        every event it takes (cadenza.plugins.voices)."""
        if self._voices is None:
            self._voices = Voices(self.codec)
        return self._voices

    @abc.abstractmethod
    def step(self) -> int:
        """Sample the next event with the current knobs and take it into the context."""

    def generate(self, n: int) -> np.ndarray:
        return np.array([self.step() for _ in range(n)], dtype=np.int16)

    def sample_event(self, logits: np.ndarray) -> int:
        """One event drawn from `logits` with the current knobs and the generator's RNG,
        among those that may come next (no sounding pitch started again, no silent one ended
        once a note has begun, at most `knobs.max_voices` sounding); the voices take it."""
        event = sample(self.voices.mask(logits, self.knobs.max_voices), self.knobs, self.rng)
        self.voices.take([event])
        return event

    def snapshot(self) -> Snapshot:
        return replace(super().snapshot(), voices=self.voices.state())

    def restore(self, state: Snapshot) -> None:
        super().restore(state)
        if state.voices is not None:
            self.voices.restore(state.voices)


class AudioGenerator(Generator):
    """Audio out: each step gives one pattern step of codec tokens, `stream` mono float32
    chunks at `sample_rate`."""

    sample_rate: int

    @abc.abstractmethod
    def step(self) -> np.ndarray:
        """One step's tokens (one per codebook), sampled and taken into the context."""

    @abc.abstractmethod
    def stream(self, chunk_frames: int) -> Iterator[np.ndarray]:
        """Endless chunks of new audio after what `prime` was given."""


class BackingGenerator(Generator):
    """Backing parts on a grid under a player, a step at a time (cadenza.plugins.backing):
    what `cadenza live --mode backing` plays. `codec` numbers the backing's notes as
    performance events when they are written out."""

    codec: PerformanceCodec
    parts: PartsCodec
    programs: list[int]  # a General MIDI program per part
    density: float  # a live knob: log-odds on note-ons
    harmony: float  # a live knob: how far choices lean on the interval table

    @property
    @abc.abstractmethod
    def listens(self) -> bool:
        """The player's notes of a step come before its backing (open, hear, then play)."""

    @abc.abstractmethod
    def open_step(self, position: int) -> None:
        """Start the frame of the step at `position` in its bar."""

    @abc.abstractmethod
    def hear(self, offs: Iterable[int] = (), ons: Iterable[int] = ()) -> None:
        """The player's note-offs and note-ons on the open step."""

    @abc.abstractmethod
    def play(self, forced: Iterable[Change] | None = None,
             emit: Callable[[Change], None] | None = None) -> list[Change]:
        """The backing's changes on the open step."""

    @abc.abstractmethod
    def play_step(self, position: int, forced: Iterable[Change] | None = None,
                  offs: Iterable[int] = (), ons: Iterable[int] = ()) -> list[Change]:
        """A whole step in the bundle's order."""

    @abc.abstractmethod
    def silence(self) -> list[tuple[int, int]]:
        """End every backing note; returns them as (part, pitch)."""


def performance_codec(bundle: Bundle) -> PerformanceCodec:
    """The event codec a bundle's `representation` describes."""
    return PerformanceRepresentation.from_dict(
        bundle.representation, bundle.path / MANIFEST, "representation").codec()


def create_session(bundle: Bundle, key: str, threads: int = 1) -> ort.InferenceSession:
    """An onnxruntime session for graph `key`, its inputs and outputs checked against the
    manifest. One intra-op thread with no spinning: a live engine shares the machine."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    filename = bundle.manifest["graphs"][key]
    try:
        session = ort.InferenceSession(
            bundle.graph_bytes(key), options, providers=["CPUExecutionProvider"]
        )
    except Exception as e:  # onnxruntime raises its own exception types for a bad graph
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise BundleError(
            bundle.path / filename, f"not a loadable ONNX graph ({first[:160]})"
        ) from None
    spec = bundle.io[key]
    for side, actual in (("inputs", session.get_inputs()), ("outputs", session.get_outputs())):
        found = {a.name: a for a in actual}
        if set(found) != set(spec[side]):
            raise BundleError(
                bundle.path / "manifest.yaml",
                f"field 'io.{key}.{side}' names "
                f"{sorted(spec[side])} but {filename} has {sorted(found)}",
            )
        for name, tensor in spec[side].items():
            dtype = ORT_DTYPES.get(found[name].type)
            if dtype != tensor["dtype"]:
                raise BundleError(
                    bundle.path / "manifest.yaml",
                    f"field 'io.{key}.{side}.{name}.dtype' "
                    f"is {tensor['dtype']} but {filename} has {found[name].type}",
                )
    return session


def plugin_classes() -> dict[str, type[Generator]]:
    """The generator plugins by name: the runtime of every model kind that makes music
    (cadenza.kinds: the built-in kinds, those installed packages declare, those registered
    at run time)."""
    classes = {}
    for name, kind in all_kinds().items():
        runtime = kind.piece("runtime") if kind.runtime is not None else None
        if isinstance(runtime, type) and issubclass(runtime, Generator):
            classes[name] = runtime
    return classes


def load_generator(
    bundle: str | Path | None = None, *, plugin: str | None = None, seed: int | None = None
) -> Generator:
    """A generator from a bundle path, or the shipped default bundle of `plugin`."""
    if bundle is None:
        if plugin is None:
            raise BundleError("--bundle", "give a bundle or a plugin name")
        bundle = default_bundle_path(plugin)
    loaded = load_bundle(bundle)
    if plugin is not None and loaded.plugin != plugin:
        raise BundleError(
            loaded.path / "manifest.yaml",
            f"field 'plugin' is {loaded.plugin!r}, but --plugin {plugin} was asked for",
        )
    available = plugin_classes()
    if loaded.plugin not in available:
        raise BundleError(
            loaded.path / "manifest.yaml",
            f"field 'plugin': no installed plugin "
            f"{loaded.plugin!r} (installed: {', '.join(sorted(available)) or 'none'})",
        )
    return available[loaded.plugin](loaded, seed=seed)
