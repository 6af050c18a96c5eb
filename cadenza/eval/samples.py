"""The sets an evaluation compares: held-out real pieces, and samples a generator makes.

Real pieces come from a prepared corpus's test split, decoded from its events, so they went
through exactly the representation a model sees. They are cut into windows as long as a
sample, so that counts (notes, pitches used) compare like with like.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from cadenza.corpus.prepare import METADATA, corpus_representation, load_split
from cadenza.corpus.token_files import load_styles
from cadenza.errors import CadenzaError
from cadenza.eval.melody import sequence_notes
from cadenza.generate import continue_primer
from cadenza.plugins.base import Generator


@dataclass
class Piece:
    id: str
    notes: np.ndarray
    style: str | None = None  # the corpus's style of the piece (bach, folk...)


@dataclass
class Sample:
    """A generated sample: `notes` is the generated part alone, starting at 0."""

    name: str
    kind: str  # "primer" (continues a held-out piece's opening) or "scratch"
    notes: np.ndarray
    primed: np.ndarray  # primer + continuation, for the piano roll
    primer_seconds: float
    events: np.ndarray  # the generated events


def held_out_pieces(corpus: Path, split: str = "test") -> list[Piece]:
    """Each sequence of a split decoded to notes, with its piece id from corpus.json. The
    held-out splits are not augmented, so there is one sequence per piece."""
    tokens, offsets = load_split(corpus, split)
    meta = json.loads((Path(corpus) / METADATA).read_text())
    summary = meta.get("splits", {}).get(split, {})
    ids: list[str] = []
    for piece, count in zip(summary.get("pieces", []), summary.get("piece_sequences", []),
                            strict=False):
        ids.extend([piece] if count == 1 else [f"{piece}#{k}" for k in range(count)])
    representation = corpus_representation(corpus)  # events, or melodies on the grid
    styles = split_styles(corpus, split)
    pieces = []
    for i in range(len(offsets) - 1):
        notes = sequence_notes(np.asarray(tokens[offsets[i] : offsets[i + 1]]), representation)
        pieces.append(Piece(ids[i] if i < len(ids) else f"{split}/{i}", notes, styles[i]))
    if not pieces:
        raise CadenzaError(f"{corpus}: the {split} split holds no piece to compare with")
    return pieces


def split_styles(corpus: Path, split: str) -> list[str]:
    """The style name of each sequence of a split."""
    indices, names = load_styles(corpus, split)
    return [names[i] for i in indices]


class StyleOfPiece:
    """Condition a generator on each held-out piece's own style, where the model knows it (a
    model trained on bach, palestrina and folk scores a chorale as bach, as training scored
    it); a style it does not know leaves its own default (untagged, or its only style)."""

    def __init__(self, generator: Generator) -> None:
        self.generator = generator
        self.default = getattr(generator, "style", None)

    def use(self, style: str | None) -> None:
        known = self.generator.styles
        if known:
            self.generator.set_style(style if style in known else self.default)


def window(notes: np.ndarray, start: float, end: float) -> np.ndarray:
    """The notes that start in [start, end), moved to start at 0, cut at the window's end."""
    inside = notes[(notes["start"] >= start) & (notes["start"] < end)].copy()
    inside["start"] -= start
    inside["end"] = np.minimum(inside["end"], end) - start
    return inside


def real_windows(pieces: list[Piece], seconds: float) -> list[tuple[int, np.ndarray]]:
    """(piece index, notes) of consecutive `seconds`-long windows of each piece; a last
    window shorter than half is left out, as is a window with no notes."""
    out = []
    for index, piece in enumerate(pieces):
        length = float(piece.notes["end"].max()) if len(piece.notes) else 0.0
        count = max(1, math.floor(length / seconds + 0.5))
        for k in range(count):
            notes = window(piece.notes, k * seconds, (k + 1) * seconds)
            if len(notes):
                out.append((index, notes))
    return out


def split_halves(windows: list[tuple[int, np.ndarray]]) -> tuple[list, list]:
    """Two halves by piece (even and odd piece index), so no piece sits in both; with too
    few pieces for two windows a half (a tiny corpus), every other window instead."""
    halves = (
        [notes for index, notes in windows if index % 2 == 0],
        [notes for index, notes in windows if index % 2 == 1],
    )
    if min(len(h) for h in halves) >= 2:
        return halves
    return [notes for _, notes in windows[::2]], [notes for _, notes in windows[1::2]]


def across_styles(pieces: list[Piece]) -> list[Piece]:
    """The pieces in an order that reaches every style in proportion from the start: the k-th
    of a style's n pieces goes (k + 0.5) / n of the way along. A split stored style by style
    (bach, then palestrina, then folk) would otherwise give its first samples all one style.
    With one style it is the split's own order."""
    counts: dict[str | None, int] = {}
    for piece in pieces:
        counts[piece.style] = counts.get(piece.style, 0) + 1
    seen: dict[str | None, int] = {}
    placed = []
    for i, piece in enumerate(pieces):
        k = seen.get(piece.style, 0)
        seen[piece.style] = k + 1
        placed.append(((k + 0.5) / counts[piece.style], i))
    return [pieces[i] for _, i in sorted(placed)]


def primer_of(piece: Piece, seconds: float) -> np.ndarray:
    return window(piece.notes, 0.0, seconds)


def generate_samples(
    generator: Generator,
    pieces: list[Piece],
    count: int,
    seconds: float,
    primer_seconds: float,
    *,
    seed: int = 0,
    progress: bool = True,
) -> list[Sample]:
    """`count` samples of `seconds` each: the first half continue the openings of held-out
    pieces (one piece after another), the rest start from nothing. Seeded per sample, so
    sample k is the same whatever `count` is. The pieces are taken across their styles
    (across_styles)."""
    style_of = StyleOfPiece(generator)
    pieces = across_styles(pieces)
    samples = []
    for k in tqdm(range(count), desc="samples", unit="sample", disable=not progress):
        generator.seed(seed + k)
        style_of.use(pieces[k % len(pieces)].style)  # a sample from nothing cycles them too
        from_primer = k < (count + 1) // 2
        if from_primer:
            piece = pieces[k % len(pieces)]
            primer = primer_of(piece, primer_seconds)
            name = f"{k:02d}-primer-{piece.id.replace('/', '_')}"
        else:
            primer = primer_of(pieces[0], 0.0)  # no notes
            name = f"{k:02d}-scratch"
        result = continue_primer(generator, primer, seconds)
        start = result.primer_seconds
        notes = window(result.notes, start, start + seconds + 1e-9)
        samples.append(
            Sample(
                name=name,
                kind="primer" if from_primer else "scratch",
                notes=notes,
                primed=result.notes,
                primer_seconds=start,
                events=result.events,
            )
        )
    return samples


def held_out_nll(
    generator: Generator,
    tokens: np.ndarray,
    offsets: np.ndarray,
    *,
    max_events: int | None = None,
    styles: list[str] | None = None,
    progress: bool = True,
) -> tuple[float, int]:
    """(mean NLL in nats per event, events scored) of a generator over held-out sequences,
    one ONNX step per event: each sequence's first event primes it and every later one is
    scored, as training's evaluate_nll and the n-gram baselines do, each under its own style
    (`styles`, one name per sequence) where the model knows it. `max_events` stops early
    (whole sequences first, then part of the last)."""
    if not hasattr(generator, "logits"):
        raise CadenzaError(f"{generator.bundle.path}: plugin {generator.plugin!r} gives no "
                           "next-event probabilities, so it has no held-out NLL")
    style_of = StyleOfPiece(generator)
    total, scored = 0.0, 0
    budget = max_events if max_events is not None else len(tokens)
    bar = tqdm(total=min(budget, len(tokens) - len(offsets) + 1), desc="held-out NLL",
               unit="event", disable=not progress)
    for i in range(len(offsets) - 1):
        sequence = np.asarray(tokens[offsets[i] : offsets[i + 1]], dtype=np.int64)
        if len(sequence) < 2 or scored >= budget:
            continue
        style_of.use(styles[i] if styles is not None else None)
        generator.prime(sequence[:1])
        before = scored
        for event in sequence[1 : 1 + budget - scored]:
            logits = generator.logits.astype(np.float64)
            top = logits.max()
            total += float(top + np.log(np.exp(logits - top).sum()) - logits[event])
            generator.extend([event])
            scored += 1
        bar.update(scored - before)
    bar.close()
    return (total / scored if scored else math.nan), scored
