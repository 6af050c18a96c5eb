"""The `performance-rnn` plugin: Magenta's event LSTM, one ONNX step per event."""

from __future__ import annotations

from typing import Any

import numpy as np

from cadenza.bundle import Bundle
from cadenza.plugins.base import EventGenerator, create_session
from cadenza.plugins.manifests import PerformanceRNNManifest

LSTMState = tuple[np.ndarray, np.ndarray, np.ndarray | None]  # h, c, the next event's logits


class PerformanceRNN(EventGenerator):
    plugin = "performance-rnn"
    manifest_type = PerformanceRNNManifest
    manifest: PerformanceRNNManifest

    def __init__(self, bundle: Bundle, *, seed: int | None = None):
        super().__init__(bundle, seed=seed)
        self.codec = self.manifest.representation.codec()
        self.session = create_session(bundle, "step")
        state_shape = bundle.io["step"]["inputs"]["h"]["shape"]
        self._zeros = np.zeros(state_shape, dtype=np.float32)
        # With no context, the model starts after a second of silence (a full TIME_SHIFT).
        self.start_event = self.codec.time_shift + self.codec.max_shift_steps
        self._token = np.zeros(1, dtype=np.int64)
        self.reset()

    def reset(self) -> None:
        self.h = self._zeros.copy()
        self.c = self._zeros.copy()
        self.logits: np.ndarray | None = None
        self.voices.reset()

    def _feed(self, event: int) -> None:
        self._token[0] = event
        logits, self.h, self.c = self.session.run(
            None, {"token": self._token, "h": self.h, "c": self.c}
        )
        self.logits = logits[0]

    def prime(self, events: np.ndarray, conditions: dict[str, Any] | None = None) -> None:
        self.reset()
        self.extend(events if len(events) else [self.start_event])

    def extend(self, events: Any) -> None:
        events = [int(event) for event in events]
        for event in events:
            self._feed(event)
        self.voices.take(events)

    def context_state(self) -> LSTMState:
        # session.run returns fresh arrays each step, so references are enough.
        return self.h, self.c, self.logits

    def restore_context(self, state: LSTMState) -> None:
        self.h, self.c, self.logits = state

    def step(self) -> int:
        if self.logits is None:
            self.extend([self.start_event])
        event = self.sample_event(self.logits)
        self._feed(event)
        return event
