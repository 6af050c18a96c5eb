"""What `cadenza eval` does differently for a melody corpus (`--representation melody`).

The corpus's tokens are melody classes on the 16th grid, not performance events: held-out
pieces are decoded to notes at `MELODY_BPM` (the tempo a melody-rnn bundle plays at without
one), and the held-out NLL is the plugin's per-step event log-probability
(`MelodyRNN.event_log_probs`), the figure the trainer reports and the n-gram baselines of
the classes are compared with.
"""

from __future__ import annotations

import math

import numpy as np
from tqdm import tqdm

from cadenza.errors import CadenzaError
from cadenza.events import PERFORMANCE
from cadenza.melody import MelodyEncoding, melody_notes, top_line
from cadenza.notes import make_notes
from cadenza.pianoroll import GRID_NOTE_DTYPE
from cadenza.plugins.base import Generator

MELODY_BPM = 120.0


def is_melody(representation: dict) -> bool:
    return representation.get("kind") == "melody"


def vocab_size(representation: dict) -> int:
    """The classes of a corpus's tokens (what its n-gram baselines count)."""
    if is_melody(representation):
        return MelodyEncoding.from_dict(representation).num_classes
    return PERFORMANCE.num_classes


def sequence_notes(tokens: np.ndarray, representation: dict) -> np.ndarray:
    """One sequence of a corpus as a note array in seconds."""
    if not is_melody(representation):
        return PERFORMANCE.decode(tokens)
    encoding = MelodyEncoding.from_dict(representation)
    grid = melody_notes(encoding.to_events(tokens)).astype(GRID_NOTE_DTYPE)
    step = 60.0 / MELODY_BPM / encoding.steps_per_quarter
    return make_notes(grid["start"] * step, grid["end"] * step, grid["pitch"], grid["velocity"])


def melody_held_out_nll(generator: Generator, tokens: np.ndarray, offsets: np.ndarray, *,
                        max_events: int | None = None, progress: bool = True
                        ) -> tuple[float, int]:
    """(mean NLL in nats per step, steps scored) over held-out melodies: every step after
    each melody's first, as `held_out_nll` scores events."""
    if not hasattr(generator, "event_log_probs"):
        raise CadenzaError(f"{generator.bundle.path}: plugin {generator.plugin!r} does not "
                           "score melodies; evaluate it on a corpus of performance events")
    total, scored = 0.0, 0
    budget = max_events if max_events is not None else len(tokens)
    bar = tqdm(total=min(budget, len(tokens) - len(offsets) + 1), desc="held-out NLL",
               unit="step", disable=not progress)
    for begin, end in zip(offsets[:-1], offsets[1:], strict=True):
        melody = np.asarray(tokens[begin : min(end, begin + 1 + budget - scored)], np.int64)
        if len(melody) < 2:
            continue
        log_probs = generator.event_log_probs(melody)
        total -= float(log_probs.sum())
        scored += len(log_probs)
        bar.update(len(log_probs))
    bar.close()
    return (total / scored if scored else math.nan), scored


def bar_repeats(notes: np.ndarray, bpm: float = MELODY_BPM) -> tuple[float, float, int]:
    """(share of note onsets that repeat the event one bar before, share that repeat the
    event two bars before, onsets counted): the lookback's own question, asked of a set of
    notes laid on the 16th grid at `bpm` (its top line). It needs no bar phase: a bar is 16
    steps back from wherever a note falls."""
    if len(notes) == 0:
        return math.nan, math.nan, 0
    step = 60.0 / bpm / 4
    grid = np.zeros(len(notes), dtype=[("start", "i8"), ("end", "i8"), ("pitch", "i8")])
    grid["start"] = np.round(notes["start"] / step)
    grid["end"] = np.maximum(np.round(notes["end"] / step), grid["start"] + 1)
    grid["pitch"] = notes["pitch"]
    events = top_line(grid, 0, int(grid["end"].max()))
    onsets = np.flatnonzero(events >= 0)
    one, two = onsets[onsets >= 16], onsets[onsets >= 32]
    counted = len(one)
    if counted == 0:
        return math.nan, math.nan, 0
    repeat_one = float(np.mean(events[one] == events[one - 16]))
    repeat_two = float(np.mean(events[two] == events[two - 32])) if len(two) else math.nan
    return repeat_one, repeat_two, counted


def repetition(real: list[np.ndarray], generated: list[np.ndarray]) -> dict:
    """The bar-repeat shares of both sets (onsets pooled over each set's pieces)."""
    figures = {}
    for name, pieces in (("real", real), ("generated", generated)):
        rows = [bar_repeats(notes) for notes in pieces]
        weights = np.array([n for _, _, n in rows], float)
        total = weights.sum() or 1.0
        figures[name] = {
            "one_bar": float(np.nansum([r[0] * r[2] for r in rows]) / total),
            "two_bars": float(np.nansum([r[1] * r[2] for r in rows if not math.isnan(r[1])])
                              / max(sum(r[2] for r in rows if not math.isnan(r[1])), 1)),
            "onsets": int(weights.sum()),
        }
    return figures


def repetition_lines(figures: dict) -> list[str]:
    """The report's lines for `repetition`."""
    real, generated = figures["real"], figures["generated"]
    return [
        "## Bar repeats (melodies)",
        "",
        "The share of note onsets that repeat the event one bar (16 steps) and two bars "
        "before: what the lookback model's repeat labels predict.",
        "",
        "| set | repeats 1 bar back | repeats 2 bars back | onsets |",
        "|---|---|---|---|",
        f"| real held-out | {real['one_bar']:.3f} | {real['two_bars']:.3f} | {real['onsets']} |",
        f"| generated | {generated['one_bar']:.3f} | {generated['two_bars']:.3f} | "
        f"{generated['onsets']} |",
        "",
    ]
