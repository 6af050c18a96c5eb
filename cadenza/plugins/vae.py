"""The `vae` plugin: phrases in, phrases out, through a segment VAE's latent codes.

Four modes over bar-aligned segments (2 bars of 16ths by default; `cadenza.pianoroll`):
`continue` (the code of the last segment -> the transition's code of the next one),
`variation` (the phrase's own codes, moved by the temperature), `interpolate` (slerp between
two codes: two phrases, or the mean codes of two styles) and `sample` (codes from the prior).
The temperature scales how far a code is drawn from its mean; the decoder samples each pitch
from the model's own probability, flattened by temperatures above 1; 0 is deterministic (the
most likely code, each pitch on where the model gives it more than even odds). The voices knob
(`max_voices`) keeps each step's highest notes (cadenza.plugins.voices.keep_highest).

In the live engine the plugin speaks the Generator contract in performance events: the
player's events are its context; when `step()` runs out of events it quantises the context
(at the engine's tempo, `conditions["bpm"]`, the first note on a downbeat), continues its last
segment and hands out the next segment's events one by one, then the next segment's, and so on.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np

from cadenza.bundle import Bundle
from cadenza.errors import BundleError, CadenzaError
from cadenza.events import PerformanceCodec
from cadenza.notes import empty_notes
from cadenza.pianoroll import (
    GRID_NOTE_DTYPE,
    HOLD,
    ONSET,
    VELOCITY,
    GridPiece,
    Meter,
    from_roll,
    grid_piece,
    segment_starts,
    to_roll,
    to_seconds,
)
from cadenza.plugins.base import EventGenerator, create_session
from cadenza.plugins.manifests import VAEManifest
from cadenza.plugins.voices import keep_highest

MODES = ("continue", "variation", "interpolate", "sample")
STYLE_PULL = 0.5  # how far a live answer's code moves toward the style in force (slerp)


def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation (MusicVAE's): codes from the prior lie near a sphere, and a
    straight line between two would pass through its low-norm inside."""
    cos = float(np.dot(a, b) / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))
    omega = math.acos(min(1.0, max(-1.0, cos)))
    if omega < 1e-6:
        return (1 - t) * a + t * b
    return (math.sin((1 - t) * omega) * a + math.sin(t * omega) * b) / math.sin(omega)


VAEState = tuple[list[int], list[int], float]  # context events, pending events, bpm


class SegmentVAE(EventGenerator):
    plugin = "vae"
    manifest_type = VAEManifest
    manifest: VAEManifest

    def __init__(self, bundle: Bundle, *, seed: int | None = None):
        super().__init__(bundle, seed=seed)
        representation = self.manifest.representation
        self.grid = representation.grid()
        self.default_bpm = representation.default_bpm
        self.codec = PerformanceCodec()  # what the live engine speaks
        self.sessions = {
            key: create_session(bundle, key) for key in ("encoder", "transition", "initial", "step")
        }
        self.latent = int(bundle.io["transition"]["inputs"]["z"]["shape"][-1])
        self.style_codes = {name: np.asarray(code, np.float32)
                            for name, code in self.manifest.style_codes.items()}
        for name, code in self.style_codes.items():
            if code.shape != (self.latent,):
                raise BundleError(
                    bundle.path / "manifest.yaml",
                    f"field 'style_codes.{name}' is not a code of {self.latent}",
                )
        self.reset()

    @property
    def styles(self) -> list[str]:
        return list(self.style_codes)

    # --- codes ---------------------------------------------------------------------------
    def encode(self, roll: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A (steps, 3, pitches) roll -> its posterior mean and standard deviation."""
        mu, logvar = self.sessions["encoder"].run(None, {"roll": roll[None].astype(np.float32)})
        return mu[0], np.exp(0.5 * logvar[0])

    def next_code(self, z: np.ndarray) -> np.ndarray:
        """The transition: a code for the segment after the one coded `z`."""
        mu, logvar = self.sessions["transition"].run(None, {"z": z[None].astype(np.float32)})
        return self._draw(mu[0], np.exp(0.5 * logvar[0]))

    def vary(self, mu: np.ndarray, std: np.ndarray) -> np.ndarray:
        return self._draw(mu, std)

    def prior(self) -> np.ndarray:
        return self._draw(np.zeros(self.latent, np.float32), np.ones(self.latent, np.float32))

    def _draw(self, mu: np.ndarray, std: np.ndarray) -> np.ndarray:
        noise = self.rng.standard_normal(self.latent).astype(np.float32)
        return (mu + self.knobs.temperature * std * noise).astype(np.float32)

    def style_code(self, name: str) -> np.ndarray:
        if name not in self.style_codes:
            known = ", ".join(self.style_codes) or "none"
            raise BundleError(self.bundle.path, f"no style {name!r} in this bundle (has: {known})")
        return self.style_codes[name]

    def decode(self, z: np.ndarray) -> np.ndarray:
        """A code -> a (steps, 3, pitches) roll, sampled step by step on the host: each pitch's
        onset, and its hold only if it sounded the step before, at the current temperature."""
        step = self.sessions["step"]
        z = z[None].astype(np.float32)
        h, c = self.sessions["initial"].run(None, {"z": z})
        frame = np.zeros((1, 3, self.grid.pitches), np.float32)
        roll = np.zeros((self.grid.segment_steps, 3, self.grid.pitches), np.float32)
        # Below 1 the temperature narrows the codes only: sharpening every pitch's own
        # Bernoulli would thin the texture towards silence, as most pitches are unlikely.
        temperature = self.knobs.temperature
        flatten = max(temperature, 1.0)
        for t in range(self.grid.segment_steps):
            logits, h, c = step.run(None, {"z": z, "frame": frame, "h": h, "c": c})
            logits = logits[0]
            sounding = (frame[0, ONSET] + frame[0, HOLD]) > 0
            if temperature > 0:
                draw = self.rng.random((2, self.grid.pitches))
                chosen = draw < 1.0 / (1.0 + np.exp(-logits[:2] / flatten))
            else:
                chosen = logits[:2] > 0
            onset = chosen[0]
            hold = chosen[1] & sounding & ~onset
            voices = keep_highest(onset | hold, self.knobs.max_voices)
            onset, hold = onset & voices, hold & voices
            roll[t, ONSET], roll[t, HOLD] = onset, hold
            roll[t, VELOCITY] = onset / (1.0 + np.exp(-logits[VELOCITY]))
            frame = roll[t][None]
        return roll

    # --- phrases on the grid ---------------------------------------------------------------
    def segment_starts_of(self, piece: GridPiece) -> list[int]:
        """Segments that tile a piece end to end from its first whole segment of the grid's
        meter, the last one running past its end (in silence) if notes are left over."""
        seg = self.grid.segment_steps
        kept: list[int] = []
        for s in segment_starts(piece, self.grid):
            if not kept or s >= kept[-1] + seg:
                kept.append(int(s))
        if not kept:
            return [self.last_segment_start(piece)]
        end = int(piece.notes["end"].max()) if len(piece.notes) else 0
        while kept[-1] + seg < end:
            kept.append(kept[-1] + seg)
        return kept

    def last_segment_start(self, piece: GridPiece) -> int:
        """The segment that ends at the first bar line at or after the last note (a phrase's
        last segment, which `continue` goes on from)."""
        end = int(piece.notes["end"].max()) if len(piece.notes) else 0
        bar_ends = np.append(piece.bar_starts, piece.bar_starts[-1:] + piece.bar_steps[-1:])
        after = bar_ends[bar_ends >= end]
        if len(after):
            line = int(after[0])
        else:  # no bar lines that far: count bars of the grid's meter from 0
            line = -(-end // self.grid.steps_per_bar) * self.grid.steps_per_bar
        return line - self.grid.segment_steps

    def segments_of(self, piece: GridPiece) -> list[np.ndarray]:
        """The rolls of a piece's segments (see segment_starts_of)."""
        return [to_roll(piece.notes, s, self.grid) for s in self.segment_starts_of(piece)]

    def run_mode(
        self,
        mode: str,
        piece: GridPiece | None = None,
        *,
        segments: int = 1,
        endpoints: tuple[np.ndarray, np.ndarray] | None = None,
        steps: int = 8,
    ) -> list[np.ndarray]:
        """The rolls of one mode, in order (see the module docstring). `piece` is the primer
        (continue, variation); `endpoints` the two codes of interpolate."""
        if mode == "sample":
            return [self.decode(self.prior()) for _ in range(segments)]
        if mode == "interpolate":
            if endpoints is None:
                raise CadenzaError("interpolate: give two phrases or styles to go between")
            if steps < 2:
                raise CadenzaError(f"--steps: interpolate needs at least 2, got {steps}")
            a, b = endpoints
            return [self.decode(slerp(a, b, i / (steps - 1))) for i in range(steps)]
        if piece is None or len(piece.notes) == 0:
            raise CadenzaError(f"{mode}: give a primer with notes (--primer)")
        if mode == "variation":
            return [self.decode(self.vary(*self.encode(roll))) for roll in self.segments_of(piece)]
        if mode == "continue":
            last = to_roll(piece.notes, self.last_segment_start(piece), self.grid)
            out, z = [], self.encode(last)[0]
            for _ in range(segments):
                out.append(self.decode(self.next_code(z)))
                z = self.encode(out[-1])[0]
            return out
        raise CadenzaError(f"--mode: unknown mode {mode!r} (known: {', '.join(MODES)})")

    def rolls_to_notes(
        self, rolls: list[np.ndarray], bpm: float, origin: float = 0.0
    ) -> np.ndarray:
        """Rolls end to end -> a note array in seconds at `bpm`, starting at `origin`."""
        notes = [
            from_roll(roll, self.grid, i * self.grid.segment_steps) for i, roll in enumerate(rolls)
        ]
        grid_notes = np.concatenate(notes) if notes else np.zeros(0, GRID_NOTE_DTYPE)
        return to_seconds(grid_notes, bpm, self.grid, origin)

    # --- the Generator contract (the live engine) ------------------------------------------
    def reset(self) -> None:
        self.context: list[int] = []
        self.pending: deque[int] = deque()
        self.bpm = self.default_bpm

    def prime(self, events: np.ndarray, conditions: dict[str, Any] | None = None) -> None:
        self.reset()
        bpm = (conditions or {}).get("bpm")
        if bpm:
            self.bpm = float(bpm)
        self.context = [int(e) for e in events]

    def extend(self, events: Any) -> None:
        self.context.extend(int(e) for e in events)

    def context_state(self) -> VAEState:
        return list(self.context), list(self.pending), self.bpm

    def restore_context(self, state: VAEState) -> None:
        context, pending, self.bpm = state
        self.context, self.pending = list(context), deque(pending)

    def step(self) -> int:
        if not self.pending:
            self.pending.extend(self._next_segment())
        event = self.pending.popleft()
        self.context.append(event)
        return event

    def _next_segment(self) -> list[int]:
        """The events of the segment after the context: from the context's end (a time shift
        to the next bar line, then the notes), through to the segment's last step."""
        codec, grid = self.codec, self.grid
        context = np.asarray(self.context, np.int64)
        notes = codec.decode(context) if len(context) else empty_notes()
        now = codec.seconds(context) if len(context) else 0.0
        step_seconds = grid.step_seconds(self.bpm)
        if len(notes):
            origin = float(notes["start"].min())  # the first note is a downbeat
            now = max(now, float(notes["end"].max()))
            notes = notes.copy()
            notes["start"] -= origin
            notes["end"] -= origin
            piece = grid_piece(notes, Meter.constant(self.bpm), grid.steps_per_quarter)
            bar = grid.steps_per_bar
            next_bar = -(-int(math.ceil((now - origin) / step_seconds - 1e-6)) // bar) * bar
            z = self.next_code(
                self.encode(to_roll(piece.notes, next_bar - grid.segment_steps, grid))[0]
            )
        else:
            origin, next_bar, z = now, 0, self.prior()
        if self.style is not None:
            z = slerp(z, self.style_code(self.style), STYLE_PULL).astype(np.float32)
        start = origin + next_bar * step_seconds
        answer = self.rolls_to_notes([self.decode(z)], self.bpm, start - now)
        events = codec.encode(answer).astype(np.int64).tolist()
        # Pad with time shifts to the segment's end, so that the next segment starts on its bar.
        end = codec.quantize(start - now + grid.segment_steps * step_seconds)
        remaining = int(end) - int(
            sum(e - codec.time_shift for e in events if codec.time_shift < e <= codec.velocity)
        )
        while remaining > 0:
            shift = min(remaining, codec.max_shift_steps)
            events.append(codec.time_shift + shift)
            remaining -= shift
        return events
