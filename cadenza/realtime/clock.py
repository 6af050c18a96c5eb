"""Musical time on `time.perf_counter`: a beat grid, a follower of a DAW's MIDI clock, and the
pulse deadlines for sending MIDI clock ourselves.

Pure logic: messages come in as (perf_counter seconds, MIDI bytes) and nothing here touches a
port or a thread, so that every behaviour is tested with explicit timestamps.

MIDI clock semantics (MIDI 1.0 spec, "System Real Time"): 24 Timing Clocks (0xF8) per quarter
note. After Start (0xFA) the song plays from position 0 *on the next clock*; after Continue
(0xFB) it resumes from the current Song Position Pointer (0xF2, counted in 16th notes = 6
clocks) on the next clock; Stop (0xFC) keeps the position. So the k-th clock after a Start or
Continue sits at position base + k clocks, where base is 0 or the pointer.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

from cadenza.midi_status import CLOCK, CONTINUE, SONG_POSITION, START, STOP

PPQN = 24  # MIDI clock pulses per quarter note (beat)
PULSES_PER_SIXTEENTH = PPQN // 4

# A grid point this close before `t` counts as at `t`: float error in origin + k * spb must not
# push a deadline that is exactly on the grid to the next one.
_GRID_EPSILON = 1e-9


@dataclass(frozen=True)
class BeatGrid:
    """A tempo and the perf_counter time of beat 0 (a downbeat). Beats count from 0."""

    bpm: float
    origin: float
    beats_per_bar: int = 4

    def __post_init__(self) -> None:
        if not (self.bpm > 0 and math.isfinite(self.bpm)):
            raise ValueError(f"bpm must be a positive number, got {self.bpm}")
        if self.beats_per_bar < 1:
            raise ValueError(f"beats_per_bar must be >= 1, got {self.beats_per_bar}")

    @property
    def seconds_per_beat(self) -> float:
        return 60.0 / self.bpm

    def beat_at(self, t: float) -> float:
        """The (fractional) beat at perf_counter time `t`; negative before the origin."""
        return (t - self.origin) / self.seconds_per_beat

    def time_of_beat(self, beat: float) -> float:
        return self.origin + beat * self.seconds_per_beat

    def next_beat(self, t: float, division: float = 1.0) -> float:
        """Time of the first grid point at or after `t`, on a grid of `division` beats:
        1 for beats, `beats_per_bar` for bars, 0.5 or 0.25 for eighths and sixteenths."""
        if division <= 0:
            raise ValueError(f"division must be positive, got {division}")
        index = math.ceil(self.beat_at(t) / division - _GRID_EPSILON)
        return self.time_of_beat(index * division)

    def next_bar(self, t: float) -> float:
        return self.next_beat(t, self.beats_per_bar)

    def retimed(self, bpm: float, at: float) -> BeatGrid:
        """The same musical position at time `at`, a new tempo from there on: what a tempo
        knob does without making the beat jump."""
        beat = self.beat_at(at)
        return replace(self, bpm=bpm, origin=at - beat * 60.0 / bpm)


class ClockFollower:
    """Follows 24 ppqn MIDI clock: a filtered tempo, the transport state and song position.

    Tempo filter: a least-squares line through the last `window` pulses, (pulse number ->
    arrival time). Its slope is the pulse period, and the line itself gives the phase, so a
    predicted beat time averages out the timestamp jitter of every pulse in the window (96
    pulses, four beats: with ±2 ms of jitter the tempo is off by about 0.01 BPM and the next
    beat by about 0.2 ms, medians; tests/realtime/test_clock.py holds it to 0.5 BPM, 2 ms). A line
    lags a tempo step by up to a window, so each pulse is first checked against the line's
    prediction: a pulse further off than max(`min_threshold`, 4 x the fit's RMS residual) is
    held back as a suspect rather than fitted (an isolated late timestamp, e.g. a GC pause,
    then never bends the line); `change_pulses` suspects in a row on the same side, moving
    further off, mean the tempo changed, and the window restarts from them. Suspects that sit
    a whole number of periods off the line are a slipped count (a pulse counted that the DAW
    never sent, or one lost on the way): the count is corrected, the tempo and phase kept.
    Suspects coming back towards the line are a stall's backlog (pulses held up, then
    delivered bunched): the line keeps its tempo and phase through it. A gap over `max_gap`
    seconds (a clock stopped, a cable pulled) restarts it too. The first pulse after
    Start/Continue may be off the line because the DAW restarted its pulses: the line then
    keeps its slope and moves.

    Positions count pulses, never time: a DAW's position is the number of clocks it sent, so
    halving the tempo is not mistaken for lost pulses.
    """

    def __init__(
        self,
        window: int = 96,
        *,
        min_pulses: int = 6,
        min_threshold: float = 0.004,
        change_pulses: int = 4,
        max_gap: float = 0.5,
    ):
        if window < 3 or min_pulses < 2 or change_pulses < 2:
            raise ValueError("window >= 3, min_pulses >= 2 and change_pulses >= 2 are needed")
        self.window = window
        self.min_pulses = min_pulses
        self.min_threshold = min_threshold
        self.change_pulses = change_pulses
        self.max_gap = max_gap
        self._pulses: deque[tuple[int, float]] = deque(maxlen=window)  # (serial, time)
        self._suspects: list[tuple[int, float, float]] = []  # (serial, time, residual)
        self._serial = 0  # serial number of the next pulse: every pulse counts, once
        self.slips = 0  # times the count was corrected (a spurious or a lost pulse)
        self._last_time: float | None = None
        # The fitted line: time = _t_mean + _period * (serial - _s_mean).
        self._s_mean = 0.0
        self._t_mean = 0.0
        self._period: float | None = None
        self._rms = 0.0
        self._locked = False  # the window once held min_pulses since the last gap
        self._rephase = False  # Start/Continue: a DAW may restart its pulses on a new phase
        # Transport: the next pulse to arrive plays song position _next_pos (in pulses).
        self._running = False
        self._next_pos = 0
        self._anchor_serial = 0  # the first pulse after Start/Continue/SPP ...
        self._anchor_pos = 0  # ... plays this position

    # -- input -------------------------------------------------------------------------

    def feed(self, t: float, message: Sequence[int]) -> None:
        """One incoming message with its perf_counter timestamp; non-clock messages are ignored."""
        if not message:
            return
        status = message[0]
        if status == CLOCK:
            self._pulse(t)
        elif status == START:
            self._next_pos = 0
            self._resume()
            self._rephase = True
        elif status == CONTINUE:
            self._resume()
            self._rephase = True
        elif status == STOP:
            self._running = False
        elif status == SONG_POSITION and len(message) >= 3:
            sixteenths = (message[1] & 0x7F) | ((message[2] & 0x7F) << 7)
            self._next_pos = sixteenths * PULSES_PER_SIXTEENTH
            if self._running:  # a jump while playing (a DAW's loop): the next pulse plays it
                self._resume()

    def _resume(self) -> None:
        self._running = True
        self._anchor_serial = self._serial
        self._anchor_pos = self._next_pos

    def _pulse(self, t: float) -> None:
        if self._repeats_last_pulse(t):
            self.slips += 1
            return
        serial = self._serial
        self._serial += 1
        if self._running:
            self._next_pos = self._anchor_pos + self._serial - self._anchor_serial
        # Equal stamps are pulses delivered together (a backlog), not time going backwards.
        gap_ok = self._last_time is not None and 0 <= t - self._last_time <= self.max_gap
        self._last_time = t
        rephase, self._rephase = self._rephase, False
        if not gap_ok:  # first pulse, a long gap, or a timestamp going backwards: start over
            self._locked = False
            self._restart([(serial, t)])
            return
        if self._period is not None and len(self._pulses) >= 3:
            residual = t - self.time_of_pulse(serial)
            if abs(residual) > max(self.min_threshold, 4.0 * self._rms):
                if rephase:
                    # The DAW restarted its pulses on a new phase at Start/Continue: keep the
                    # tempo, move the line onto this pulse; new pulses refill the window.
                    moved = [(s, u + residual) for s, u in self._pulses]
                    self._restart([*moved, (serial, t)])
                    return
                if self._suspects and (self._suspects[-1][2] > 0) != (residual > 0):
                    self._suspects.clear()
                self._suspects.append((serial, t, residual))
                if len(self._suspects) >= self.change_pulses:
                    if self._slipped():
                        return
                    if abs(residual) <= abs(self._suspects[0][2]):
                        # Off the line but coming back to it: the backlog of a stall (pulses
                        # held up, then delivered bunched), not a new tempo. Never fitted.
                        self._suspects.pop(0)
                        return
                    # The tempo changed: the last trusted pulse joins the two lines.
                    start = [self._pulses[-1]] + [(s, u) for s, u, _ in self._suspects]
                    self._restart(start)
                return
        self._suspects.clear()
        self._pulses.append((serial, t))
        self._fit()

    def _repeats_last_pulse(self, t: float) -> bool:
        """A pulse on top of the one before, which sat on the line: that pulse delivered twice
        (a JACK client late in its cycle reads the previous cycle's events again). No DAW sends
        two pulses a quarter period apart, and a stall's backlog follows a pulse that was itself
        held up, off the line: a suspect."""
        if self._period is None or len(self._pulses) < 3 or self._suspects:
            return False
        serial, last = self._pulses[-1]
        return serial == self._serial - 1 and 0 <= t - last < self._period / 4

    def _slipped(self) -> bool:
        """The suspects sit on the line, a whole number of pulses off: the count slipped (a
        pulse the DAW never sent counted, or one it sent lost on the way), not the tempo. The
        count is corrected and the suspects fitted; True when that was the case."""
        period, threshold = self._period, max(self.min_threshold, 4.0 * self._rms)
        whole = round(self._suspects[0][2] / period)
        if whole == 0 or any(abs(r - whole * period) > threshold for _, _, r in self._suspects):
            return False
        last_trusted = self._pulses[-1][0]
        self._serial += whole
        if self._anchor_serial > last_trusted:  # Start came after the slip: it counted it too
            self._anchor_serial += whole
        if self._running:
            self._next_pos = self._anchor_pos + self._serial - self._anchor_serial
        self._pulses.extend((s + whole, u) for s, u, _ in self._suspects)
        self._suspects.clear()
        self.slips += 1
        self._fit()
        return True

    def _restart(self, pulses: list[tuple[int, float]]) -> None:
        self._pulses.clear()
        self._pulses.extend(pulses)
        self._suspects.clear()
        self._fit()

    def _fit(self) -> None:
        n = len(self._pulses)
        if n < 2:
            self._period = None
            return
        s_mean = sum(s for s, _ in self._pulses) / n
        t_mean = sum(u for _, u in self._pulses) / n
        sxx = sum((s - s_mean) ** 2 for s, _ in self._pulses)
        sxy = sum((s - s_mean) * (u - t_mean) for s, u in self._pulses)
        period = sxy / sxx
        if period <= 0:  # only possible with absurd timestamps: keep the newest pulse
            self._restart([self._pulses[-1]])
            return
        self._s_mean, self._t_mean, self._period = s_mean, t_mean, period
        self._locked |= n >= self.min_pulses
        if n > 2:
            sse = sum((u - t_mean - period * (s - s_mean)) ** 2 for s, u in self._pulses)
            self._rms = math.sqrt(sse / (n - 2))
        else:
            self._rms = 0.0

    # -- output ------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._running

    @property
    def pulses(self) -> int:
        """Pulses counted since this follower was made (a slipped count corrected)."""
        return self._serial

    @property
    def bpm(self) -> float | None:
        """The filtered tempo; None until `min_pulses` steady pulses arrived (again after a
        gap). Right after a tempo change it comes from the few pulses of the new tempo."""
        if self._period is None or not self._locked:
            return None
        return 60.0 / (PPQN * self._period)

    def time_of_pulse(self, serial: float) -> float:
        """Predicted arrival time of pulse number `serial` (counting every pulse received)."""
        if self._period is None:
            raise RuntimeError("no tempo estimate yet")
        return self._t_mean + self._period * (serial - self._s_mean)

    def beat_position(self, t: float) -> float:
        """Beats since the song start at time `t`, honouring Song Position Pointer.

        Stopped: the position playback resumes from. Running, before the first pulse after
        Start/Continue: that position, since the song moves on the clock, not on Start."""
        if not self._running:
            return self._next_pos / PPQN
        if self._period is None or self._serial == self._anchor_serial:
            return self._anchor_pos / PPQN
        pulse = self._s_mean + (t - self._t_mean) / self._period
        return max(self._anchor_pos + pulse - self._anchor_serial, self._anchor_pos) / PPQN

    def grid(self, beats_per_bar: int = 4) -> BeatGrid | None:
        """The beat grid of the pulses (beat 0 = song start), or None while stopped or before
        a tempo estimate: a stopped DAW has no grid to put an answer on."""
        bpm = self.bpm
        if bpm is None or not self._running:
            return None
        origin = self.time_of_pulse(self._anchor_serial - self._anchor_pos)
        return BeatGrid(bpm, origin, beats_per_bar)


def song_position_message(sixteenths: int) -> list[int]:
    """A Song Position Pointer message (14 bits, least significant 7 first)."""
    if not 0 <= sixteenths < 1 << 14:
        raise ValueError(f"song position must be 0..16383 sixteenths, got {sixteenths}")
    return [SONG_POSITION, sixteenths & 0x7F, sixteenths >> 7]


class ClockSender:
    """When to send MIDI clock for a grid: pulse k sits on beat k / 24 of the grid.

    `grid` may be replaced at any time (a tempo change, made with `BeatGrid.retimed` so the
    position does not jump); the deadlines generator reads it before each pulse."""

    def __init__(self, grid: BeatGrid):
        self.grid = grid

    def deadlines(self, after: float) -> Iterator[float]:
        """perf_counter deadlines of the pulses at or after `after`, strictly increasing."""
        last = -math.inf
        pulse = math.ceil(self.grid.beat_at(after) * PPQN - _GRID_EPSILON)
        while True:
            t = self.grid.time_of_beat(pulse / PPQN)
            if t <= last:  # the grid jumped back: skip the pulses already past
                pulse = math.floor(self.grid.beat_at(last) * PPQN + _GRID_EPSILON) + 1
                t = self.grid.time_of_beat(pulse / PPQN)
            yield t
            last = t
            pulse += 1

    def start_messages(self, beat: float = 0.0) -> list[list[int]]:
        """What to send before the first pulse so a follower plays from `beat`: Start at 0,
        else the pointer (rounded down to a 16th) and Continue."""
        if beat <= 0:
            return [[START]]
        return [song_position_message(int(beat * 4 + _GRID_EPSILON)), [CONTINUE]]
