"""The `melody-rnn` plugin: a lead line answered with a lead line, on the engine's bar grid.

It speaks performance events, as every event plugin does, and thinks in 16th-note steps at
the engine's tempo (`conditions["bpm"]`; the bundle's default_bpm without one). At the first
`step()` after `prime`, the context (the player's phrase) is laid on a grid that ends where
the context ends, its top line taken (`cadenza.melody.top_line`: a pianist's chords become
their highest notes) and squashed into the model's range and key (the answer is moved back
by the same amount). `conditions["bar_step"]` says which 16th of the bar the answer begins
on (0 with `--quantize bar`: a downbeat), so that the binary counter and the lookback's bars
follow the engine's bars; without it, the phrase's first note is taken for a downbeat.
Each `step()` then hands out the events of one melody step at a time: the note-off of the
note it ends, a velocity, the note-on, and the time shift to the next step. At most one
note sounds at any time.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from cadenza.bundle import Bundle
from cadenza.events import PerformanceCodec
from cadenza.melody import NO_EVENT, NOTE_OFF, squash, top_line, transpose_events
from cadenza.plugins.base import EventGenerator, create_session
from cadenza.plugins.manifests import MelodyRNNManifest
from cadenza.plugins.sampling import sample

DEFAULT_VELOCITY = 80  # an answer to no phrase
HISTORY = 33  # the steps one input reads: the event and two bars before the next one


@dataclass
class Line:
    """Everything a step changes: the melody so far (classes; the primer's then the answer's),
    the model's state and next logits, and where the answer's events stand."""

    classes: list[int] = field(default_factory=list)
    first_position: int = 0  # the bar-grid position of classes[0]
    state: list[np.ndarray] = field(default_factory=list)
    logits: np.ndarray | None = None
    shift: int = 0  # semitones the primer was moved by to fit the model
    answered: int = 0  # answer steps handed out
    sounding: int | None = None  # the pitch of the answer's sounding note
    velocity_sent: bool = False


class MelodyRNN(EventGenerator):
    plugin = "melody-rnn"
    manifest_type = MelodyRNNManifest
    manifest: MelodyRNNManifest

    def __init__(self, bundle: Bundle, *, seed: int | None = None):
        super().__init__(bundle, seed=seed)
        self.encoding = self.manifest.representation.encoding()
        self.variant = self.manifest.model.variant
        self.default_bpm = self.manifest.representation.default_bpm
        self.codec = PerformanceCodec()  # what the live engine speaks
        self.session = create_session(bundle, "step")
        inputs = bundle.io["step"]["inputs"]
        self.state_names = [name for name in ("h", "c", "attention", "window") if name in inputs]
        self._zeros = [np.zeros(inputs[n]["shape"], np.float32) for n in self.state_names]
        self.reset()

    # --- the Generator contract -----------------------------------------------------------
    def reset(self) -> None:
        self.context: list[int] = []
        self.pending: deque[int] = deque()
        self.bpm = self.default_bpm
        self.bar_step: int | None = None
        self.velocity = DEFAULT_VELOCITY
        self.line: Line | None = None  # laid out at the first step

    def prime(self, events: Any, conditions: dict[str, Any] | None = None) -> None:
        self.reset()
        conditions = conditions or {}
        if conditions.get("bpm"):
            self.bpm = float(conditions["bpm"])
        if conditions.get("bar_step") is not None:
            self.bar_step = int(conditions["bar_step"]) % self.encoding.steps_per_bar
        self.context = [int(e) for e in events]

    def extend(self, events: Any) -> None:
        """The player's events join the context the answer is laid out from; once it is
        laid out (the answer has begun), they are kept but do not move its grid."""
        self.context.extend(int(e) for e in events)

    def context_state(self) -> tuple:
        line = self.line and replace(self.line, classes=list(self.line.classes),
                                     state=list(self.line.state))
        return list(self.context), list(self.pending), line, self.bpm, self.bar_step

    def restore_context(self, state: tuple) -> None:
        context, pending, line, self.bpm, self.bar_step = state
        self.context, self.pending = list(context), deque(pending)
        self.line = line and replace(line, classes=list(line.classes), state=list(line.state))

    def step(self) -> int:
        if not self.pending:
            self.pending.extend(self.next_step_events())
        event = self.pending.popleft()
        self.context.append(event)
        return event

    # --- the melody ----------------------------------------------------------------------
    @property
    def step_seconds(self) -> float:
        return 60.0 / self.bpm / self.encoding.steps_per_quarter

    def primer_melody(self) -> tuple[np.ndarray, int]:
        """The context's top line on the grid that ends where the context ends (melody
        events, one a step), and which 16th of the bar the step after it is."""
        notes = self.codec.decode(np.asarray(self.context, np.int64)) if self.context else []
        if len(notes) == 0:
            return np.array([NO_EVENT]), self.bar_step or 0
        self.velocity = int(np.clip(np.round(notes["velocity"].mean()), 1, 127))
        now, step = self.codec.seconds(np.asarray(self.context, np.int64)), self.step_seconds
        starts = np.round((notes["start"] - now) / step).astype(np.int64)
        ends = np.maximum(np.round((notes["end"] - now) / step).astype(np.int64), starts + 1)
        grid = np.zeros(len(notes), dtype=[("start", "i8"), ("end", "i8"), ("pitch", "i8")])
        grid["start"], grid["end"], grid["pitch"] = starts, ends, notes["pitch"]
        first = min(int(starts.min()), -1)
        events = top_line(grid, first, -first)
        bar_step = self.bar_step if self.bar_step is not None else -first
        return events, bar_step % self.encoding.steps_per_bar

    def lay_out(self) -> Line:
        """The primer squashed into the model's range, fed step by step."""
        events, bar_step = self.primer_melody()
        events, shift = squash(events, self.encoding)
        classes = self.encoding.to_classes(events).tolist()
        line = Line(first_position=(bar_step - len(classes)) % self.encoding.steps_per_bar,
                    state=[z.copy() for z in self._zeros], shift=shift)
        inputs = self.encoding.inputs(classes, self.variant, line.first_position)
        line.classes = classes
        for row in inputs:
            self.feed(line, row[None])
        return line

    def feed(self, line: Line, inputs: np.ndarray) -> None:
        feeds = {"inputs": inputs, **dict(zip(self.state_names, line.state, strict=True))}
        logits, *line.state = self.session.run(None, feeds)
        line.logits = logits[0]

    def event_log_probs(self, classes: np.ndarray) -> np.ndarray:
        """log P(classes[t] | classes[:t]) for t >= 1, the melody read from a bar line (the
        held-out NLL of `cadenza eval`): a lookback label counts with the event it repeats,
        as the trainer's held-out figure counts it."""
        classes = np.asarray(classes, np.int64)
        line = Line(state=[z.copy() for z in self._zeros])
        n, out = self.encoding.num_classes, []
        for t, row in enumerate(self.encoding.inputs(classes[:-1], self.variant)):
            self.feed(line, row[None])
            logits = line.logits.astype(np.float64)
            probs = np.exp(logits - logits.max())
            probs /= probs.sum()
            at, target = t + 1, int(classes[t + 1])
            p = probs[target]
            for i in range(len(probs) - n):  # the lookback labels that decode to `target`
                p += probs[n + i] * (self.encoding.decode_label(n + i, classes[:at]) == target)
            out.append(np.log(max(p, 1e-300)))
        return np.array(out)

    def next_step_events(self) -> list[int]:
        """Sample the next melody step and return its performance events."""
        if self.line is None:
            self.line = self.lay_out()
        line, encoding = self.line, self.encoding
        # The host sampler's knobs, over the melody's labels (not performance events, so not
        # `sample_event`'s voice mask: the line is monophonic by construction).
        label = sample(line.logits, self.knobs, self.rng)
        line.classes.append(encoding.decode_label(label, line.classes))
        window = line.classes[-HISTORY:]
        first = line.first_position + len(line.classes) - len(window)
        self.feed(line, encoding.inputs(window, self.variant, first, skip=len(window) - 1))
        event = int(encoding.to_events([line.classes[-1]])[0])
        return self.step_events(line, event)

    def step_events(self, line: Line, event: int) -> list[int]:
        codec, out = self.codec, []
        if event != NO_EVENT and line.sounding is not None:  # a new note or NOTE_OFF ends it
            out.append(codec.note_off + line.sounding)
            line.sounding = None
        if event != NOTE_OFF and event != NO_EVENT:
            pitch = int(transpose_events(np.array([event]), -line.shift)[0])  # player's key
            if not line.velocity_sent:
                out.append(codec.velocity + int(codec.velocity_to_bin(self.velocity)))
                line.velocity_sent = True
            out.append(codec.note_on + pitch)
            line.sounding = pitch
        # The time shift to the next step, in whole ticks that never drift from the grid.
        k, step = line.answered, self.step_seconds
        ticks = int(codec.quantize((k + 1) * step) - codec.quantize(k * step))
        line.answered += 1
        while ticks > 0:
            shift = min(ticks, codec.max_shift_steps)
            out.append(codec.time_shift + shift)
            ticks -= shift
        return out
