"""Bar-aligned segments for the VAE: pieces read onto the grid once, cached as plain .npy.

The token corpus (`cadenza corpus prepare`) holds performance events in seconds, without bar
lines, so the VAE reads the pieces themselves: every piece through MIDI bytes and
`cadenza.pianoroll`, by its tempo map and time signatures. MIDI written by music21 drops the
rest before a pickup bar, which would put every bar line early; for music21 scores the pickup
is read from the score itself. The split is `split_of(piece id)`, the same as the token corpus.

The cache folder holds, per split, the grid notes of every piece end to end
(`{split}.notes.npy`, a structured array, no pickle), `{split}.note_offsets.npy`, the bar lines
(`{split}.bar_starts.npy`, `{split}.bar_steps.npy`, `{split}.bar_offsets.npy`) and each
piece's style (`{split}.styles.npy`), and `cache.json`, which says what it was built from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from cadenza.atomic import atomic_path, atomic_write_text
from cadenza.corpus.common import SPLITS, WorkerDied, pool_map, split_of
from cadenza.corpus.sources import (
    Piece,
    cap_pieces,
    music21_data,
    resolve_source,
    style_of,
)
from cadenza.errors import CadenzaError
from cadenza.pianoroll import (
    GRID_NOTE_DTYPE,
    Grid,
    GridPiece,
    read_grid_midi,
    segment_starts,
    to_roll,
)

CACHE_FORMAT = "cadenza-vae-grid/1"


def read_piece(task: tuple[int, Piece, int]) -> tuple[str, GridPiece | None, str]:
    """One piece on the grid (in a worker process); a failure is returned, not raised. The
    task's first item is the piece's index (corpus.common.pool_map's rule)."""
    _, piece, steps_per_quarter = task
    try:
        if piece.kind == "midi":
            data, pickup = piece.path.read_bytes(), 0.0
        else:
            data, pickup = music21_data(piece)
        # The corpus is read as written: the training data never depends on a tempo guess.
        grid_piece = read_grid_midi(data, piece.id, steps_per_quarter, pickup, fit_tempo=False)
        return piece.id, grid_piece, ""
    except Exception as e:  # music21 raises many kinds; the piece is listed as skipped
        return piece.id, None, f"{type(e).__name__}: {str(e)[:120]}"


def build_cache(
    sources: list[str],
    out: str | Path,
    *,
    steps_per_quarter: int = 4,
    max_pieces_per_source: int = 0,
    jobs: int = 1,
    progress: bool = True,
) -> Path:
    """Read every piece of `sources` onto the grid and write the cache (unless it is there)."""
    out = Path(out)
    key = {
        "format": CACHE_FORMAT,
        "sources": list(sources),
        "steps_per_quarter": steps_per_quarter,
        "max_pieces_per_source": max_pieces_per_source,
    }
    meta = out / "cache.json"
    if meta.is_file():
        try:
            cached = json.loads(meta.read_text())
        except json.JSONDecodeError:
            cached = {}
        if {k: cached.get(k) for k in key} == key:
            return out
    pieces: list[tuple[Piece, str]] = []
    styles: list[str] = []
    for source in sources:
        for piece in cap_pieces(resolve_source(source), max_pieces_per_source or None):
            style = style_of(source, piece)
            if style not in styles:
                styles.append(style)
            pieces.append((piece, style))
    by_split: dict[str, list[tuple[GridPiece, int]]] = {s: [] for s in SPLITS}
    skipped: dict[str, str] = {}
    tasks = [(index, piece, steps_per_quarter) for index, (piece, _) in enumerate(pieces)]
    style_of_id = {piece.id: styles.index(style) for piece, style in pieces}
    # Spawned workers: the trainer that calls this may hold torch's threads, which a fork
    # would copy mid-lock.
    results = pool_map(read_piece, tasks, jobs, start_method="spawn")
    try:
        for piece_id, grid_piece, problem in tqdm(
            results, total=len(tasks), desc="grid", unit="piece", disable=not progress
        ):
            if grid_piece is None or len(grid_piece.notes) == 0:
                skipped[piece_id] = problem or "no notes"
                continue
            by_split[split_of(piece_id)].append((grid_piece, style_of_id[piece_id]))
    except WorkerDied as e:
        files = [str(pieces[i][0].path) for i in e.indices]
        raise e.error("VAE grid", files, "the grid cache") from None
    out.mkdir(parents=True, exist_ok=True)
    # cache.json is written last and means "complete": gone while the arrays are rewritten,
    # so a run killed midway leaves no cache.json over a mix of old and new arrays.
    meta.unlink(missing_ok=True)
    counts = {}
    for split, items in by_split.items():
        _write_split(out, split, items)
        counts[split] = len(items)
    atomic_write_text(
        meta,
        json.dumps({**key, "styles": styles, "pieces": counts, "skipped": skipped}, indent=1),
    )
    return out


def _write_split(out: Path, split: str, items: list[tuple[GridPiece, int]]) -> None:
    def offsets(sizes):
        return np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)

    def save(name: str, array: np.ndarray) -> None:
        with atomic_path(out / f"{split}.{name}.npy") as tmp:
            np.save(tmp, array, allow_pickle=False)

    notes = [p.notes for p, _ in items]
    save("notes", np.concatenate(notes) if notes else np.zeros(0, GRID_NOTE_DTYPE))
    save("note_offsets", offsets([len(n) for n in notes]))
    save(
        "bar_starts",
        np.concatenate([p.bar_starts for p, _ in items] or [[]]).astype(np.int64),
    )
    save(
        "bar_steps",
        np.concatenate([p.bar_steps for p, _ in items] or [[]]).astype(np.int64),
    )
    save("bar_offsets", offsets([len(p.bar_starts) for p, _ in items]))
    save("styles", np.array([s for _, s in items], dtype=np.int16))


def load_pieces(cache: str | Path, split: str) -> tuple[list[GridPiece], np.ndarray, list[str]]:
    """The pieces of one split, their style indices, and the style names."""
    cache = Path(cache)
    try:
        meta = json.loads((cache / "cache.json").read_text())

        def load(name: str) -> np.ndarray:
            return np.load(cache / f"{split}.{name}.npy", allow_pickle=False)

        notes, note_offsets = load("notes"), load("note_offsets")
        bar_starts, bar_steps, bar_offsets = (
            load("bar_starts"),
            load("bar_steps"),
            load("bar_offsets"),
        )
        styles = load("styles")
    except (OSError, ValueError) as e:
        raise CadenzaError(f"{cache}: not a VAE grid cache ({type(e).__name__})") from None
    pieces = [
        GridPiece(
            notes[note_offsets[i] : note_offsets[i + 1]],
            bar_starts[bar_offsets[i] : bar_offsets[i + 1]],
            bar_steps[bar_offsets[i] : bar_offsets[i + 1]],
        )
        for i in range(len(note_offsets) - 1)
    ]
    return pieces, styles.astype(np.int64), list(meta["styles"])


@dataclass
class Segments:
    """Every bar-aligned segment of a split (one bar apart), and which follow one another:
    `next[i]` is the segment starting where segment i ends (-1 if none)."""

    pieces: list[GridPiece]
    piece: np.ndarray  # piece index of each segment
    start: np.ndarray  # its first step
    style: np.ndarray  # its piece's style
    next: np.ndarray

    def __len__(self) -> int:
        return len(self.start)

    def rolls(
        self, index: np.ndarray, grid: Grid, transpose: np.ndarray | None = None
    ) -> np.ndarray:
        """(len(index), steps, 3, pitches) float32 rolls, each transposed by `transpose[i]`."""
        shifts = np.zeros(len(index), np.int64) if transpose is None else transpose
        return np.stack(
            [
                to_roll(self.pieces[self.piece[i]].notes, int(self.start[i]), grid, int(t))
                for i, t in zip(index, shifts, strict=True)
            ]
        )


def make_segments(pieces: list[GridPiece], styles: np.ndarray, grid: Grid) -> Segments:
    piece_index, starts = [], []
    for i, p in enumerate(pieces):
        found = segment_starts(p, grid)
        # Leave out segments with no note at all (rests between movements, end padding).
        found = [
            s
            for s in found
            if np.any((p.notes["start"] < s + grid.segment_steps) & (p.notes["end"] > s))
        ]
        piece_index.extend([i] * len(found))
        starts.extend(found)
    piece_index, starts = np.array(piece_index, np.int64), np.array(starts, np.int64)
    lookup = {(int(p), int(s)): k for k, (p, s) in enumerate(zip(piece_index, starts, strict=True))}
    following = np.array(
        [
            lookup.get((int(p), int(s) + grid.segment_steps), -1)
            for p, s in zip(piece_index, starts, strict=True)
        ],
        np.int64,
    )
    return Segments(
        pieces,
        piece_index,
        starts,
        styles[piece_index] if len(piece_index) else piece_index,
        following,
    )
