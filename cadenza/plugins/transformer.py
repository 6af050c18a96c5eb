"""The `transformer` plugin: a Music Transformer with a key/value cache held in numpy.

The bundle has two graphs: `prefill` runs a whole primer at once; `step` runs one token
against the cache and returns that token's keys and values, which are written into the cache
in place (no step copies it). Slot 0 holds the conditioning token (a style, or "any") for good;
events ring through the other slots, so when the context is full the oldest event gives way
and generation goes on without a pause: attention is relative, so a window that slides looks
like any other window.

Style guidance (`sampling.style_guidance`, a knob): a model that learnt the untagged "any"
token beside its styles (style_dropout > 0) can be held to a style more closely than it learnt
to, as classifier-free guidance holds MusicGen to its text. A second cache keeps the same
events under "any", and the logits are any + g * (style - any); 1 is the model as trained.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from cadenza.bundle import Bundle
from cadenza.errors import BundleError
from cadenza.manifest import MAX_STYLE_GUIDANCE
from cadenza.plugins.base import EventGenerator, Generator, create_session
from cadenza.plugins.manifests import DEFAULT_CONTEXT, BackingManifest, TransformerManifest
from cadenza.plugins.sampling import guided, sample

__all__ = ["DEFAULT_CONTEXT", "CachedTransformer", "KVCache", "MusicTransformer"]


class KVCache:
    """Keys and values (layers, heads, size, head_dim) with the position each slot holds."""

    def __init__(self, layers: int, heads: int, head_dim: int, size: int):
        if size < 2:
            raise ValueError("a cache needs at least two slots")
        self.size = size
        self.k = np.zeros((layers, heads, size, head_dim), dtype=np.float32)
        self.v = np.zeros_like(self.k)
        self.positions = np.full(size, -1, dtype=np.int64)
        self.next_position = 0

    def slot(self, position: int) -> int:
        return 0 if position == 0 else 1 + (position - 1) % (self.size - 1)

    def clear(self) -> None:
        """Empty: every slot free, the next token at position 0."""
        self.positions.fill(-1)
        self.next_position = 0

    def fill(self, k: np.ndarray, v: np.ndarray) -> None:
        """Start over with a prefill's keys and values (layers, heads, T, head_dim), T <= size."""
        length = k.shape[2]
        self.clear()
        self.k[:, :, :length] = k
        self.v[:, :, :length] = v
        self.positions[:length] = np.arange(length)
        self.next_position = length

    def append(self, k: np.ndarray, v: np.ndarray) -> None:
        """Write one token's keys and values (layers, heads, head_dim) at the next position."""
        slot = self.slot(self.next_position)
        self.k[:, :, slot] = k
        self.v[:, :, slot] = v
        self.positions[slot] = self.next_position
        self.next_position += 1

    def snapshot(self) -> tuple:
        return self.k.copy(), self.v.copy(), self.positions.copy(), self.next_position

    def restore(self, state: tuple) -> None:
        k, v, positions, self.next_position = state
        self.k[...], self.v[...], self.positions[...] = k, v, positions


# The cache, the events it holds, the next logits, the style, and the unstyled cache with its
# logits (None where guidance is off).
TransformerState = tuple[tuple, tuple[int, ...], np.ndarray | None, str | None,
                         tuple[tuple, np.ndarray] | None]


class CachedTransformer(Generator):
    """The cached transformer that the transformer and backing plugins run: a style token in
    slot 0, then tokens one at a time against the cache. `feed` takes a token in, `logits`
    are the next token's."""

    manifest: TransformerManifest | BackingManifest

    def __init__(self, bundle: Bundle, *, seed: int | None = None, context: int | None = None):
        super().__init__(bundle, seed=seed)
        model = self.manifest.model
        self.codec = self.manifest.codec()
        self.vocab_size = model.vocab_size
        self.conditions: list[str] = list(model.styles)  # "any", then the styles
        # Trained with no untagged windows (style_dropout 0), the model never learnt "any":
        # it plays in its first style unless told another, and cannot be guided.
        self.learnt_any = model.style_dropout > 0.0 or len(self.conditions) == 1
        if not self.learnt_any:
            self.style = self.conditions[1]
        guidance = self.manifest.sampling.style_guidance
        self.style_guidance = 1.0 if guidance is None else guidance
        self.prefill_session = create_session(bundle, "prefill")
        self.step_session = create_session(bundle, "step")
        size = context or self.manifest.context
        if not isinstance(size, int) or isinstance(size, bool) or size < 2:
            raise BundleError(bundle.path / "manifest.yaml",
                              f"field 'context' should be an int of at least 2, got {size!r}")
        shape = (model.num_layers, model.num_heads, model.head_dim, size)
        self.cache = KVCache(*shape)
        self.unstyled = KVCache(*shape)  # the same events under "any", for style guidance
        self.history: deque[int] = deque(maxlen=size - 1)  # the events the cache holds
        self.styled_logits: np.ndarray | None = None
        self.unstyled_logits: np.ndarray | None = None  # None: the unstyled cache is behind
        self.logits: np.ndarray | None = None  # what is sampled from (_mix)
        self._token = np.zeros(1, dtype=np.int64)
        self._position = np.zeros(1, dtype=np.int64)
        self.reset()

    @property
    def styles(self) -> list[str]:
        return self.conditions[1:]

    def style_token(self, style: str | None) -> int:
        """The conditioning token of a style; None is untagged ("any")."""
        return self.vocab_size + (self.conditions.index(style) if style else 0)

    @property
    def guiding(self) -> bool:
        """Style guidance is on: a style is set, the model learnt "any", the knob is not 1."""
        return self.style is not None and self.learnt_any and self.style_guidance != 1.0

    def _mix(self) -> None:
        """The next token's logits (`logits`), guided to the style where guidance is on: mixed
        once here, not at every read (backing reads them several times a step). A knob turned
        on between two steps guides from the next step on, once the unstyled cache caught up."""
        if self.unstyled_logits is None or not self.guiding:
            self.logits = self.styled_logits
        else:
            self.logits = guided(self.styled_logits, self.unstyled_logits, self.style_guidance)

    def set_style_guidance(self, value: float) -> None:
        """Turn the style-guidance knob (1: none); from the next event on (a knob turned from 1
        catches the untagged context up then, one prefill)."""
        if not 0.0 <= value <= MAX_STYLE_GUIDANCE:
            raise ValueError(f"style guidance must be in 0..{MAX_STYLE_GUIDANCE:g}, got {value}")
        if value != 1.0 and not self.learnt_any:
            raise BundleError(self.bundle.path / "manifest.yaml",
                              "the model never learnt untagged windows (model.style_dropout 0): "
                              "it has no untagged context to guide a style against")
        self.style_guidance = value
        self._mix()

    def reset(self) -> None:
        self.prime([])

    def prime(self, events: Any, conditions: dict[str, Any] | None = None) -> None:
        if conditions and "style" in conditions:
            super().set_style(conditions["style"])
        self.history.clear()
        self.history.extend(int(e) for e in events)
        self._prefill()

    def set_style(self, style: str | None) -> None:
        """Switch style (a live knob): the same events, under another conditioning token."""
        super().set_style(style)
        self._prefill()

    def _prefill(self) -> None:
        self.styled_logits = self._run_prefill(self.cache, self.style)
        self.unstyled_logits = self._run_prefill(self.unstyled, None) if self.guiding else None
        self._mix()

    def _run_prefill(self, cache: KVCache, style: str | None) -> np.ndarray:
        tokens = np.array([[self.style_token(style), *self.history]], dtype=np.int64)
        logits, keys, values = self.prefill_session.run(None, {"tokens": tokens})
        cache.fill(keys, values)
        return logits[0]

    def extend(self, events: Any) -> None:
        for event in events:
            self.feed(int(event))

    def feed(self, event: int) -> None:
        """Take one token into the context (cache, history) and compute the next logits."""
        self.styled_logits = self._run_step(self.cache, event)
        self.history.append(event)
        if not self.guiding:
            self.unstyled_logits = None
        elif self.unstyled_logits is None:  # guidance just turned on: catch up at once
            self.unstyled_logits = self._run_prefill(self.unstyled, None)
        else:
            self.unstyled_logits = self._run_step(self.unstyled, event)
        self._mix()

    def _run_step(self, cache: KVCache, event: int) -> np.ndarray:
        self._token[0] = event
        self._position[0] = cache.next_position
        logits, k, v = self.step_session.run(
            None,
            {
                "token": self._token,
                "position": self._position,
                "cache_k": cache.k,
                "cache_v": cache.v,
                "cache_positions": cache.positions,
            },
        )
        cache.append(k, v)
        return logits[0]

    def step(self) -> int:
        """Sample the next token with the current knobs and take it into the context."""
        event = sample(self.logits, self.knobs, self.rng)
        self.feed(event)
        return event

    def context_state(self) -> TransformerState:
        unstyled = None if self.unstyled_logits is None else (
            self.unstyled.snapshot(), self.unstyled_logits)
        return self.cache.snapshot(), tuple(self.history), self.styled_logits, self.style, unstyled

    def restore_context(self, state: TransformerState) -> None:
        cache, history, self.styled_logits, self.style, unstyled = state
        self.cache.restore(cache)
        self.history.clear()
        self.history.extend(history)
        self.unstyled_logits = None
        if unstyled is not None:
            self.unstyled.restore(unstyled[0])
            self.unstyled_logits = unstyled[1]
        self._mix()


class MusicTransformer(CachedTransformer, EventGenerator):
    """The `transformer` plugin: performance events, conditioned on a style."""

    plugin = "transformer"
    manifest_type = TransformerManifest
    manifest: TransformerManifest

    # The cached transformer's context, with the voices told of every event it takes.
    def prime(self, events: Any, conditions: dict[str, Any] | None = None) -> None:
        events = [int(event) for event in events]
        super().prime(events, conditions)
        self.voices.restart(events)

    def extend(self, events: Any) -> None:
        events = [int(event) for event in events]
        super().extend(events)
        self.voices.take(events)

    def step(self) -> int:
        event = self.sample_event(self.logits)
        self.feed(event)
        return event
