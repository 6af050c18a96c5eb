"""Notes on a metrical grid: quantisation by a file's tempo map and time signatures, bar lines,
and the onset/hold/velocity piano roll the VAE reads and writes.

A `Meter` maps seconds to quarter notes (the tempo map) and says where bars begin (the time
signatures). A file gives both (`read_meter`); the live engine gives a constant tempo
(`Meter.constant`). Notes are snapped to the nearest grid step (16ths by default); a note
keeps at least one step.

The roll has three channels per step and pitch: onset (a note starts here), hold (a note that
started earlier still sounds) and velocity (0..1, at onsets). Onset and hold apart, a repeated
note stays two notes, which a plain "sounding" roll would merge.

Numpy and symusic only: the live runtime quantises with this module too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cadenza.errors import MidiFileError
from cadenza.midi import parse_midi_bytes, parse_score, performed_notes
from cadenza.notes import make_notes

GRID_NOTE_DTYPE = np.dtype([("start", "i4"), ("end", "i4"), ("pitch", "i2"), ("velocity", "i2")])
ONSET, HOLD, VELOCITY = 0, 1, 2  # roll channels


def make_grid_notes(notes, velocity: int = 80) -> np.ndarray:
    """Grid notes from (start, end, pitch) triples in steps, at one velocity."""
    rows = [(int(start), int(end), int(pitch), velocity) for start, end, pitch in notes]
    return np.array(rows, dtype=GRID_NOTE_DTYPE)


@dataclass(frozen=True)
class Grid:
    """The segment a VAE sees: `bars` bars of `beats_per_bar`/`beat_unit`, `steps_per_quarter`
    steps a quarter note (4: a 16th-note grid), pitches min_pitch..max_pitch."""

    steps_per_quarter: int = 4
    beats_per_bar: int = 4
    beat_unit: int = 4
    bars: int = 2
    min_pitch: int = 21
    max_pitch: int = 108

    def __post_init__(self) -> None:
        steps = self.beats_per_bar * 4 * self.steps_per_quarter / self.beat_unit
        if steps != int(steps) or steps < 1:
            raise ValueError(
                f"a bar of {self.beats_per_bar}/{self.beat_unit} is not a whole number of steps "
                f"at {self.steps_per_quarter} steps per quarter"
            )
        if not 0 <= self.min_pitch <= self.max_pitch <= 127:
            raise ValueError(f"pitch range {self.min_pitch}..{self.max_pitch} is not in 0..127")

    @property
    def steps_per_bar(self) -> int:
        return self.beats_per_bar * 4 * self.steps_per_quarter // self.beat_unit

    @property
    def quarters_per_bar(self) -> float:
        return self.beats_per_bar * 4 / self.beat_unit

    @property
    def segment_steps(self) -> int:
        return self.bars * self.steps_per_bar

    @property
    def pitches(self) -> int:
        return self.max_pitch - self.min_pitch + 1

    def step_seconds(self, bpm: float) -> float:
        """Seconds per step at `bpm` quarter notes a minute."""
        return 60.0 / bpm / self.steps_per_quarter

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class Meter:
    """A tempo map and time signatures. Tempo changes at `tempo_quarters` (seconds
    `tempo_seconds`), each lasting `seconds_per_quarter`; time signatures (numerator,
    denominator) from `signature_quarters` on."""

    tempo_quarters: np.ndarray
    tempo_seconds: np.ndarray
    seconds_per_quarter: np.ndarray
    signature_quarters: np.ndarray
    signatures: np.ndarray  # (n, 2) numerator, denominator

    @classmethod
    def constant(cls, bpm: float, beats_per_bar: int = 4, beat_unit: int = 4) -> Meter:
        return cls(
            np.zeros(1),
            np.zeros(1),
            np.array([60.0 / bpm]),
            np.zeros(1),
            np.array([[beats_per_bar, beat_unit]]),
        )

    def with_pickup(self, quarters: float) -> Meter:
        """The same meter with its first bar line at `quarters`: MIDI written from a score
        often drops the rest before a pickup (anacrusis), so that its bars start too early."""
        signature_quarters = self.signature_quarters.copy()
        signature_quarters[0] = quarters
        keep = np.concatenate([[True], signature_quarters[1:] > quarters])
        return Meter(
            self.tempo_quarters,
            self.tempo_seconds,
            self.seconds_per_quarter,
            signature_quarters[keep],
            self.signatures[keep],
        )

    def quarters(self, seconds: np.ndarray) -> np.ndarray:
        """Seconds -> quarter notes, through the tempo map."""
        seconds = np.asarray(seconds, dtype=np.float64)
        i = np.maximum(np.searchsorted(self.tempo_seconds, seconds, side="right") - 1, 0)
        elapsed = seconds - self.tempo_seconds[i]
        return self.tempo_quarters[i] + elapsed / self.seconds_per_quarter[i]

    def bar_lines(self, until: float) -> tuple[np.ndarray, np.ndarray]:
        """Bar starts (in quarters) up to `until`, and each bar's length in quarters. A time
        signature that changes mid-bar starts a new bar there, as notation would."""
        starts, lengths = [], []
        edges = np.append(self.signature_quarters, max(until, 0.0))
        for (numerator, denominator), begin, end in zip(
            self.signatures, edges[:-1], edges[1:], strict=True
        ):
            length = numerator * 4.0 / denominator
            count = int(np.ceil((end - begin) / length - 1e-9)) if end > begin else 0
            starts.append(begin + length * np.arange(count))
            lengths.append(np.full(count, length))
        return np.concatenate(starts), np.concatenate(lengths)


def read_meter(data: bytes, name: str | Path = "<bytes>") -> Meter:
    """The tempo map and time signatures of MIDI file bytes (120 bpm and 4/4 where it has none)."""
    score = parse_score(data, name)
    tpq = float(score.ticks_per_quarter)
    tempos = score.tempos.numpy()
    ticks, mspq = tempos["time"].astype(np.float64), tempos["mspq"].astype(np.float64)
    if len(ticks) == 0 or ticks[0] > 0:
        ticks, mspq = np.concatenate([[0.0], ticks]), np.concatenate([[500_000.0], mspq])
    # Tempos at one tick (music21 writes two at tick 0): the last is the one that plays.
    last_tempo = np.append(np.diff(ticks) > 0, True)
    ticks, mspq = ticks[last_tempo], mspq[last_tempo]
    quarters = ticks / tpq
    per_quarter = mspq / 1e6
    seconds = np.concatenate([[0.0], np.cumsum(np.diff(quarters) * per_quarter[:-1])])
    signatures = score.time_signatures.numpy()
    sig_q = signatures["time"].astype(np.float64) / tpq
    sig = np.stack([signatures["numerator"], signatures["denominator"]], axis=1).astype(np.int64)
    if len(sig_q) == 0 or sig_q[0] > 0:
        sig_q, sig = np.concatenate([[0.0], sig_q]), np.concatenate([[[4, 4]], sig]).reshape(-1, 2)
    # Files repeat a signature at one time (one per track): the last one at a time wins.
    last = np.append(np.diff(sig_q) > 0, True)
    sig_q, sig = sig_q[last], sig[last]
    # A signature repeating the one in force is no change (it must not restart a bar).
    change = np.concatenate([[True], np.any(sig[1:] != sig[:-1], axis=1)])
    return Meter(quarters, seconds, per_quarter, sig_q[change], sig[change])


def quantize(notes: np.ndarray, meter: Meter, steps_per_quarter: int = 4) -> np.ndarray:
    """A note array (seconds) -> grid notes: start and end snapped to the nearest step."""
    out = np.zeros(len(notes), dtype=GRID_NOTE_DTYPE)
    start = np.round(meter.quarters(notes["start"]) * steps_per_quarter).astype(np.int64)
    end = np.round(meter.quarters(notes["end"]) * steps_per_quarter).astype(np.int64)
    out["start"] = start
    out["end"] = np.maximum(end, start + 1)
    out["pitch"] = notes["pitch"]
    out["velocity"] = notes["velocity"]
    return out[np.lexsort((out["pitch"], out["start"]))]


@dataclass
class GridPiece:
    """A piece on the grid: its notes, and where its bars start and how long they are (steps)."""

    notes: np.ndarray  # GRID_NOTE_DTYPE
    bar_starts: np.ndarray  # int64 steps
    bar_steps: np.ndarray  # int64 steps per bar
    bpm: float = 120.0  # the tempo at its start (to write it back out at)


def grid_piece(notes: np.ndarray, meter: Meter, steps_per_quarter: int = 4) -> GridPiece:
    """Quantise `notes` and lay the meter's bars over them (bars off the grid are dropped)."""
    grid_notes = quantize(notes, meter, steps_per_quarter)
    until = float(grid_notes["end"].max()) / steps_per_quarter if len(grid_notes) else 0.0
    starts, lengths = meter.bar_lines(until)
    starts, lengths = starts * steps_per_quarter, lengths * steps_per_quarter

    def on_grid(x: np.ndarray) -> np.ndarray:
        return np.abs(x - np.round(x)) < 1e-6

    whole = on_grid(starts) & on_grid(lengths)
    as_steps = np.round(np.stack([starts[whole], lengths[whole]])).astype(np.int64)
    bpm = 60.0 / float(meter.seconds_per_quarter[0])
    return GridPiece(grid_notes, as_steps[0], as_steps[1], bpm)


ALIGNED = 0.9  # the share of onsets near a grid step for a tempo to fit a file
NEAR = 0.1  # ... within this fraction of a step


def on_grid_share(onsets: np.ndarray, meter: Meter, steps_per_quarter: int = 4) -> float:
    """The share of `onsets` (seconds) within NEAR of a grid step of `meter`."""
    steps = meter.quarters(onsets) * steps_per_quarter
    return float(np.mean(np.abs(steps - np.round(steps)) <= NEAR)) if len(onsets) else 1.0


def fitted_meter(notes: np.ndarray, meter: Meter, steps_per_quarter: int = 4) -> Meter:
    """The file's meter when its notes sit on its grid. Otherwise (a file written at a nominal
    tempo, as many are) the constant tempo that puts them there, its first note a downbeat:
    of the tempos that fit, the closest to the file's own (a slower one would fit as well by
    calling eighths sixteenths). Unchanged when none fits (a free performance)."""
    onsets = np.unique(notes["start"])
    if on_grid_share(onsets, meter, steps_per_quarter) >= ALIGNED:
        return meter
    first = float(onsets[0])
    own = 60.0 / float(meter.seconds_per_quarter[0])
    candidates = np.arange(40.0, 240.25, 0.25)
    per_quarter = 60.0 / candidates
    # Eighth notes first: a tempo 1.5 times the true one puts quarter notes on 16ths (every
    # sixth one), but not on eighths.
    for per_beat in (steps_per_quarter / 2, steps_per_quarter):
        units = (onsets[None, :] - first) / per_quarter[:, None] * per_beat
        error = np.abs(units - np.round(units))
        fits = np.flatnonzero(np.mean(error <= NEAR, axis=1) >= ALIGNED)
        if len(fits):
            break
    else:
        return meter
    # Each run of neighbouring tempos that fit is one reading: its best-aligned tempo stands
    # for it, and the reading closest to the file's own tempo wins.
    runs = np.split(fits, np.flatnonzero(np.diff(fits) > 1) + 1)
    readings = [run[np.argmin(error[run].mean(axis=1))] for run in runs]
    best = min(readings, key=lambda i: abs(np.log(candidates[i] / own)))
    signature = meter.signatures[:1]
    return Meter(
        np.zeros(1), np.array([first]), per_quarter[best : best + 1], np.zeros(1), signature
    )


MAX_QUARTERS = 36_000  # the longest piece read on the grid: an hour at 600 bpm


def read_grid_midi(
    data: bytes,
    name: str | Path = "<bytes>",
    steps_per_quarter: int = 4,
    pickup: float = 0.0,
    fit_tempo: bool = True,
) -> GridPiece:
    """MIDI file bytes on the grid, by the file's tempo map and time signatures (sustain
    pedal applied, drums left out, as everywhere else in Cadenza). `pickup`: quarters before
    the first bar line, when the file's own bars do not say it. A file whose notes are off
    its own tempo's grid is read at the tempo that fits them (`fitted_meter`), unless
    `fit_tempo` is off (a score's tempo map is exact, its triplets off the grid on purpose)."""
    notes = performed_notes(parse_midi_bytes(data, name))
    meter = read_meter(data, name)
    if fit_tempo and len(notes):
        meter = fitted_meter(notes, meter, steps_per_quarter)
    # Seconds are bounded (cadenza.midi), quarters not yet: a file's tempo of a microsecond a
    # quarter would lay millions of bars over a short piece.
    last = float(meter.quarters(notes["end"]).max()) if len(notes) else 0.0
    if not last <= MAX_QUARTERS:
        raise MidiFileError(name, f"its notes end {last:.4g} quarter notes in, beyond "
                                  f"{MAX_QUARTERS} (a tempo of {MAX_QUARTERS // 60} bpm for "
                                  f"an hour)")
    return grid_piece(notes, meter.with_pickup(pickup) if pickup else meter, steps_per_quarter)


def segment_starts(piece: GridPiece, grid: Grid, hop_bars: int = 1) -> np.ndarray:
    """Steps where a segment of `grid.bars` whole bars of the grid's meter starts, every
    `hop_bars` bars. Bars of another length (a 3/4 bar in a 4/4 grid) break the run."""
    ok = piece.bar_steps == grid.steps_per_bar
    run = np.ones(len(ok) - grid.bars + 1, bool) if len(ok) >= grid.bars else np.zeros(0, bool)
    for offset in range(grid.bars):
        run &= ok[offset : offset + len(run)]
    # The bars must also be contiguous (a dropped off-grid bar leaves a gap).
    if len(run):
        end = piece.bar_starts[grid.bars - 1 : grid.bars - 1 + len(run)] + grid.steps_per_bar
        run &= end - piece.bar_starts[: len(run)] == grid.segment_steps
    index = np.flatnonzero(run)
    return piece.bar_starts[index[:: max(hop_bars, 1)]] if hop_bars > 1 else piece.bar_starts[index]


def to_roll(notes: np.ndarray, start: int, grid: Grid, transpose: int = 0) -> np.ndarray:
    """Grid notes -> the (steps, 3, pitches) float32 roll of the segment starting at `start`.
    Notes out of the pitch range are left out; a note sounding into the segment is a hold."""
    steps, roll = grid.segment_steps, np.zeros((grid.segment_steps, 3, grid.pitches), np.float32)
    pitch = notes["pitch"].astype(np.int64) + transpose - grid.min_pitch
    inside = (notes["end"] > start) & (notes["start"] < start + steps)
    inside &= (pitch >= 0) & (pitch < grid.pitches)
    for s, e, p, v in zip(
        notes["start"][inside] - start,
        notes["end"][inside] - start,
        pitch[inside],
        notes["velocity"][inside],
        strict=True,
    ):
        roll[max(s, 0) : min(e, steps), HOLD, p] = 1.0
        if s >= 0:
            roll[s, VELOCITY, p] = v / 127.0
    for s, p in zip(notes["start"][inside] - start, pitch[inside], strict=True):
        if s >= 0:  # after every hold: an onset of one part wins over another's held note
            roll[s, ONSET, p] = 1.0
    roll[:, HOLD] *= 1.0 - roll[:, ONSET]
    return roll


def from_roll(roll: np.ndarray, grid: Grid, offset: int = 0) -> np.ndarray:
    """A roll -> grid notes: a note per onset, lasting while the pitch is held after it.
    A hold with no note to continue is ignored (a sampler may produce one)."""
    onset, hold = roll[:, ONSET] > 0.5, roll[:, HOLD] > 0.5
    steps = len(roll)
    # run[t, p]: how many steps from t on the pitch goes on being held (vectorised over
    # pitches, one pass over the steps backwards).
    goes_on = hold & ~onset
    run = np.zeros((steps + 1, roll.shape[2]), np.int64)
    for t in range(steps - 1, -1, -1):
        run[t] = np.where(goes_on[t], run[t + 1] + 1, 0)
    t, p = np.nonzero(onset)
    notes = np.zeros(len(t), GRID_NOTE_DTYPE)
    notes["start"] = t + offset
    notes["end"] = t + 1 + run[t + 1, p] + offset
    notes["pitch"] = p + grid.min_pitch
    notes["velocity"] = np.clip(np.round(roll[t, VELOCITY, p] * 127), 1, 127)
    return notes[np.lexsort((notes["pitch"], notes["start"]))]


def to_seconds(notes: np.ndarray, bpm: float, grid: Grid, origin: float = 0.0) -> np.ndarray:
    """Grid notes -> a note array in seconds at a constant `bpm`, step 0 at `origin`."""
    step = grid.step_seconds(bpm)
    return make_notes(
        origin + notes["start"] * step,
        origin + notes["end"] * step,
        notes["pitch"],
        notes["velocity"],
    )
