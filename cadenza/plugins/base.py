"""The Generator contract, and the registry of plugins over the `cadenza.plugins` entry points.

A plugin is built from a bundle. Its state (LSTM h/c, a KV cache, a latent) lives in numpy
arrays owned by the instance, so one process can run several generators side by side.
"""

from __future__ import annotations

import abc
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import onnxruntime as ort

from cadenza.bundle import Bundle, default_bundle_path, load_bundle
from cadenza.errors import BundleError
from cadenza.events import PerformanceCodec
from cadenza.plugins.sampling import Knobs, sample

ENTRY_POINT_GROUP = "cadenza.plugins"
ORT_DTYPES = {
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(bool)": "bool",
}


class Generator(abc.ABC):
    """Next-event generator. Subclasses set `plugin` and implement prime/step/reset."""

    plugin: ClassVar[str]

    def __init__(self, bundle: Bundle, *, seed: int | None = None):
        if bundle.plugin != self.plugin:
            raise BundleError(
                bundle.path, f"field 'plugin' is {bundle.plugin!r}, this is {self.plugin!r}"
            )
        self.bundle = bundle
        defaults = bundle.sampling
        self.knobs = Knobs(
            temperature=float(defaults.get("temperature", 1.0)),
            top_k=int(defaults.get("top_k", 0)),
            top_p=float(defaults.get("top_p", 1.0)),
        )
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

    @abc.abstractmethod
    def prime(self, events: np.ndarray, conditions: dict[str, Any] | None = None) -> None:
        """Set the context from which generation continues (replacing any earlier one)."""

    @abc.abstractmethod
    def step(self) -> int:
        """Sample the next event with the current knobs and take it into the context."""

    @abc.abstractmethod
    def extend(self, events) -> None:
        """Take events into the context without sampling (a player's notes, as played)."""

    @abc.abstractmethod
    def reset(self) -> None:
        """Forget the context."""

    @abc.abstractmethod
    def snapshot(self) -> Any:
        """The generator's state, to `restore` later: generation can run ahead and be
        rewound when a player's note arrives that the look-ahead did not know about."""

    @abc.abstractmethod
    def restore(self, state: Any) -> None:
        """Return to a state taken by `snapshot`."""

    def generate(self, n: int) -> np.ndarray:
        return np.array([self.step() for _ in range(n)], dtype=np.int16)

    def _sample(self, logits: np.ndarray) -> int:
        return sample(logits, self.knobs, self.rng)


def performance_codec(bundle: Bundle) -> PerformanceCodec:
    """The event codec a bundle's `representation` describes."""
    rep = bundle.representation
    return PerformanceCodec(
        steps_per_second=int(rep.get("steps_per_second", 100)),
        max_shift_steps=int(rep.get("max_shift_steps", 100)),
        velocity_bins=int(rep.get("velocity_bins", 32)),
    )


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
    """Installed plugins by name; third-party packages add theirs under the same group."""
    return {ep.name: ep.load() for ep in entry_points(group=ENTRY_POINT_GROUP)}


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
