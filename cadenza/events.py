"""Magenta's Performance event vocabulary, encoded and decoded with numpy.

The 388 classes are note_seq's PerformanceOneHotEncoding with 32 velocity bins, in its order:

    0..127    NOTE_ON pitch
    128..255  NOTE_OFF pitch
    256..355  TIME_SHIFT 1..100 steps (10 ms each at 100 steps/s)
    356..387  VELOCITY bin 1..32, bin = (velocity - 1) // 4 + 1

The encoder walks notes exactly as note_seq's Performance._from_quantized_sequence does
(sorted by start time then pitch; events ordered by (step, note index, is_offset)); a
VELOCITY event precedes a NOTE_ON only when the bin changed. Decoding ends each NOTE_OFF's
oldest open note of that pitch (note_seq's FIFO), ignores orphan offs, drops zero-length
notes, and closes notes that never end at the end of the performance, at most 5 s after
they started.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cadenza.errors import CadenzaError
from cadenza.notes import empty_notes, make_notes, sort_notes

NUM_PITCHES = 128
MAX_ENCODED_EVENTS = 1 << 24  # the most tokens `encode` lays out (an hour of dense music is <1M)


class TooManyEvents(CadenzaError, ValueError):
    """encode's backstop: notes that would lay out more than MAX_ENCODED_EVENTS tokens (tens
    of MB of notes, or a codec with tiny time shifts over an hour). A CadenzaError, so it
    reaches a user as one line; callers that know the file name it (MidiFileError)."""


@dataclass(frozen=True)
class PerformanceCodec:
    steps_per_second: int = 100
    max_shift_steps: int = 100
    velocity_bins: int = 32
    max_note_seconds: float = 5.0
    default_velocity: int = 100  # note_seq's velocity for notes before any VELOCITY event

    # Offsets of the four event ranges, in note_seq's order.
    @property
    def note_on(self) -> int:
        return 0

    @property
    def note_off(self) -> int:
        return NUM_PITCHES

    @property
    def time_shift(self) -> int:
        return 2 * NUM_PITCHES - 1  # token for a shift of s steps is time_shift + s

    @property
    def velocity(self) -> int:
        return 2 * NUM_PITCHES + self.max_shift_steps - 1  # token for bin b is velocity + b

    @property
    def num_classes(self) -> int:
        return 2 * NUM_PITCHES + self.max_shift_steps + self.velocity_bins

    @property
    def velocity_bin_size(self) -> int:
        return -(-127 // self.velocity_bins)  # ceil(127 / bins), as note_seq

    def velocity_to_bin(self, velocity: np.ndarray) -> np.ndarray:
        return (np.asarray(velocity, dtype=np.int64) - 1) // self.velocity_bin_size + 1

    def bin_to_velocity(self, bins: np.ndarray) -> np.ndarray:
        return 1 + (np.asarray(bins, dtype=np.int64) - 1) * self.velocity_bin_size

    def quantize(self, seconds: np.ndarray) -> np.ndarray:
        """note_seq's quantize_to_step with cutoff 0.5: round half up to the nearest step."""
        return np.floor(np.asarray(seconds) * self.steps_per_second + 0.5).astype(np.int64)

    # ----------------------------------------------------------------------------------
    def encode(self, notes: np.ndarray) -> np.ndarray:
        """Note array (sustain already applied) -> int16 token array."""
        if len(notes) == 0:
            return np.zeros(0, dtype=np.int16)
        notes = sort_notes(notes)
        start = np.maximum(self.quantize(notes["start"]), 0)
        end = self.quantize(notes["end"])
        end = np.where(end <= start, start + 1, end)  # note_seq gives every note >= 1 step

        n = len(notes)
        index = np.arange(n)
        steps = np.concatenate([start, end])
        idx = np.concatenate([index, index])
        is_off = np.concatenate([np.zeros(n, bool), np.ones(n, bool)])
        ev = np.lexsort((is_off, idx, steps))
        steps, idx, is_off = steps[ev], idx[ev], is_off[ev]
        pitch = notes["pitch"][idx].astype(np.int64)

        # Time shifts before each note event: full max-size shifts, then the remainder.
        delta = np.diff(steps, prepend=0)
        n_full = np.where(delta > 0, (delta - 1) // self.max_shift_steps, 0)
        remainder = delta - n_full * self.max_shift_steps
        n_shift = n_full + (delta > 0)

        # A VELOCITY event before a NOTE_ON whose bin differs from the previous NOTE_ON's.
        vbin = self.velocity_to_bin(notes["velocity"][idx])
        onset_bins = vbin[~is_off]
        onset_changed = onset_bins != np.concatenate([[0], onset_bins[:-1]])
        has_vel = np.zeros(len(ev), bool)
        has_vel[~is_off] = onset_changed

        # Lay the tokens out: per note event [shifts...][velocity?][note].
        per_event = n_shift + has_vel + 1
        ends = np.cumsum(per_event)
        if ends[-1] > MAX_ENCODED_EVENTS:  # before allocating them: notes at absurd times
            raise TooManyEvents(f"the notes would be {int(ends[-1])} events, over "
                             f"{MAX_ENCODED_EVENTS} (a note at {float(notes['end'].max()):.4g} s)")
        starts = ends - per_event
        tokens = np.empty(ends[-1], dtype=np.int64)
        note_pos = ends - 1
        tokens[note_pos] = np.where(is_off, self.note_off + pitch, self.note_on + pitch)
        vel_pos = note_pos[has_vel] - 1
        tokens[vel_pos] = self.velocity + vbin[has_vel]
        # Shift slots: the run starting at `starts`, of length n_shift; the last is the remainder.
        shift_owner = np.repeat(np.arange(len(ev)), n_shift)
        shift_pos = np.arange(len(shift_owner)) - np.repeat(np.cumsum(n_shift) - n_shift, n_shift)
        is_last = shift_pos == n_shift[shift_owner] - 1
        shift_value = np.where(is_last, remainder[shift_owner], self.max_shift_steps)
        tokens[starts[shift_owner] + shift_pos] = self.time_shift + shift_value
        return tokens.astype(np.int16)

    # ----------------------------------------------------------------------------------
    def decode(self, tokens: np.ndarray) -> np.ndarray:
        """Token array -> note array (seconds), as note_seq's Performance.to_sequence."""
        tokens = np.asarray(tokens, dtype=np.int64)
        if tokens.size and (tokens.min() < 0 or tokens.max() >= self.num_classes):
            raise ValueError(f"token outside 0..{self.num_classes - 1}")
        is_shift = (tokens > self.time_shift) & (tokens < self.velocity + 1)
        shift = np.where(is_shift, tokens - self.time_shift, 0)
        step = np.cumsum(shift)  # step at each token (a shift applies from itself on)
        final_step = int(step[-1]) if len(step) else 0

        # Velocity in force at each token: the last VELOCITY event at or before it.
        is_vel = tokens > self.velocity
        last_vel = np.maximum.accumulate(np.where(is_vel, np.arange(len(tokens)), -1))
        vel_bins = np.where(is_vel, tokens - self.velocity, 0)
        velocity = np.where(
            last_vel >= 0,
            self.bin_to_velocity(vel_bins[np.maximum(last_vel, 0)]),
            self.default_velocity,
        )

        is_on = tokens < self.note_off
        is_off = (tokens >= self.note_off) & (tokens <= self.time_shift)
        note_pos = np.flatnonzero(is_on | is_off)
        if len(note_pos) == 0:
            return empty_notes()
        pitch = np.where(is_on, tokens, tokens - self.note_off)[note_pos]
        delta = np.where(is_on[note_pos], 1, -1)

        # Group by pitch (stable, so each group keeps time order).
        order = np.argsort(pitch, kind="stable")
        pitch_s, delta_s, pos_s = pitch[order], delta[order], note_pos[order]
        group_start = np.flatnonzero(np.diff(pitch_s, prepend=-1))
        group = np.cumsum(np.diff(pitch_s, prepend=-1) != 0) - 1

        # Open-note count clamped at zero. An off is an orphan when no note is open before it,
        # i.e. when the unclamped running sum before it sits at its running minimum (<= 0).
        run = np.cumsum(delta_s)
        run -= np.repeat(
            run[group_start] - delta_s[group_start], np.diff(np.append(group_start, len(run)))
        )
        before = run - delta_s
        big = 4 * len(run) + 4  # shifts each group below all earlier ones so minima never leak
        running_min = np.minimum.accumulate(before - group * big) + group * big
        running_min = np.minimum(running_min, 0)
        orphan = (delta_s < 0) & (before <= running_min)

        # FIFO per pitch: the k-th valid off of a pitch ends the k-th on of that pitch.
        valid = ~orphan
        pitch_v, delta_v, pos_v = pitch_s[valid], delta_s[valid], pos_s[valid]
        group_v = group[valid]
        on_mask, off_mask = delta_v > 0, delta_v < 0
        rank_on = _rank_within_group(group_v, on_mask)
        rank_off = _rank_within_group(group_v, off_mask)
        on_key = group_v[on_mask] * (len(pos_v) + 1) + rank_on[on_mask]
        off_key = group_v[off_mask] * (len(pos_v) + 1) + rank_off[off_mask]
        on_pos = pos_v[on_mask]
        off_pos = pos_v[off_mask]
        match = np.searchsorted(on_key, off_key)  # on_key is sorted (group, rank)

        start_step = step[on_pos]
        end_step = np.full(len(on_pos), final_step, dtype=np.int64)
        ended = np.zeros(len(on_pos), bool)
        end_step[match] = step[off_pos]
        ended[match] = True
        max_steps = int(round(self.max_note_seconds * self.steps_per_second))
        end_step = np.where(ended, end_step, np.minimum(end_step, start_step + max_steps))
        keep = end_step > start_step

        spsec = float(self.steps_per_second)
        return make_notes(
            start=start_step[keep] / spsec,
            end=end_step[keep] / spsec,
            pitch=pitch_v[on_mask][keep],
            velocity=velocity[on_pos][keep],
        )

    # ----------------------------------------------------------------------------------
    def seconds(self, tokens: np.ndarray) -> float:
        """Duration of a token sequence: the sum of its time shifts."""
        tokens = np.asarray(tokens, dtype=np.int64)
        shifts = tokens[(tokens > self.time_shift) & (tokens <= self.velocity)] - self.time_shift
        return float(shifts.sum()) / self.steps_per_second

    def event_name(self, token: int) -> str:
        token = int(token)
        if token < self.note_off:
            return f"NOTE_ON {token}"
        if token <= self.time_shift:
            return f"NOTE_OFF {token - self.note_off}"
        if token <= self.velocity:
            return f"TIME_SHIFT {token - self.time_shift}"
        return f"VELOCITY {token - self.velocity}"

    def to_dict(self) -> dict:
        return {
            "kind": "performance",
            "steps_per_second": self.steps_per_second,
            "max_shift_steps": self.max_shift_steps,
            "velocity_bins": self.velocity_bins,
        }


def _rank_within_group(group: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """For elements where mask holds, their 0-based rank among masked elements of their group."""
    counts = np.cumsum(mask) - mask  # masked elements strictly before each position
    first = np.flatnonzero(np.diff(group, prepend=-1))
    before_group = np.repeat(counts[first], np.diff(np.append(first, len(group))))
    return counts - before_group


PERFORMANCE = PerformanceCodec()
