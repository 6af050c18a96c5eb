"""The style critic at evaluation time: which corpus style a piece sounds like, by onnxruntime.

A small transformer encoder over performance events (trained by cadenza.training.critic)
classifies a window of events as one of the styles it was trained on (bach, palestrina,
folk). It ships as a bundle whose plugin is `style-critic`: manifest.yaml + critic.onnx,
with its held-out accuracy under `training`. No torch here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cadenza.bundle import Bundle, default_bundle_path, load_bundle
from cadenza.critic_manifests import StyleCriticManifest
from cadenza.errors import BundleError, CadenzaError
from cadenza.plugins.base import create_session

PLUGIN = "style-critic"
GRAPH = "classify"


class StyleCritic:
    def __init__(self, bundle: Bundle):
        if bundle.plugin != PLUGIN:
            raise BundleError(bundle.path / "manifest.yaml",
                              f"field 'plugin' is {bundle.plugin!r}, not {PLUGIN!r}")
        model = bundle.section(StyleCriticManifest).model
        self.styles, self.window, self.pad = list(model.styles), model.window, model.pad
        self.bundle = bundle
        self.session = create_session(bundle, GRAPH)

    @property
    def accuracy(self) -> float | None:
        return self.bundle.training.get("test_accuracy")

    def probabilities(self, events: np.ndarray) -> np.ndarray:
        """P(style) of a piece: the mean over its windows of `window` events (up to 8 of
        them, evenly spread), so a long piece is judged on more than its opening."""
        events = np.asarray(events, dtype=np.int64)
        if len(events) == 0:
            return np.full(len(self.styles), 1.0 / len(self.styles))
        starts = np.unique(np.linspace(0, max(len(events) - self.window, 0), 8).astype(int))
        batch = np.full((len(starts), self.window), self.pad, dtype=np.int64)
        for row, start in enumerate(starts):
            piece = events[start : start + self.window]
            batch[row, : len(piece)] = piece
        (logits,) = self.session.run(None, {"tokens": batch})
        logits = logits.astype(np.float64)
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        return probs.mean(axis=0)

    def classify(self, pieces: list[np.ndarray]) -> tuple[list[str], np.ndarray]:
        """(style name, probabilities) per piece (event arrays)."""
        probs = np.stack([self.probabilities(p) for p in pieces]) if pieces else np.zeros(
            (0, len(self.styles)))
        return [self.styles[i] for i in probs.argmax(axis=1)], probs


def load_critic(path: str | Path | None = None) -> StyleCritic | None:
    """The critic at `path`, or the shipped one; None when none is installed and none was
    asked for (an evaluation without a style column), an error when the asked one is bad."""
    if path is None:
        try:
            path = default_bundle_path(PLUGIN)
        except CadenzaError:
            return None
    return StyleCritic(load_bundle(path))
