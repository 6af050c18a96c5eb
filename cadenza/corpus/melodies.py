"""Pieces as monophonic melodies, for the Melody RNN (`corpus prepare --representation melody`).

Each piece is put on the 16th grid by its tempo map and time signatures (music21 scores with
their pickup from the score, as the parts corpus does), its top line taken (`top_line`) from
the bar line at or before its first note, squashed into the encoding's range in C major
(`squash`: Magenta's melody pipeline, which needs no transposition augmentation then), and
written as class indices. Deviation from Magenta's MelodyExtractor: a tune is kept whole
(not cut at rests of a bar or more, nor truncated); a tune with fewer than 5 distinct pitches
is skipped, as its `min_unique_pitches` does.
"""

from __future__ import annotations

import numpy as np

from cadenza.corpus.common import PieceResult, skip_reason
from cadenza.corpus.sources import Piece, music21_data
from cadenza.melody import MelodyEncoding, squash, top_line
from cadenza.pianoroll import GridPiece, read_grid_midi

MELODY = MelodyEncoding()
MIN_UNIQUE_PITCHES = 5  # MelodyExtractor's min_unique_pitches


def melody_start(piece: GridPiece) -> int:
    """The bar line at or before the piece's first note (its pickup's bar begins earlier)."""
    first = int(piece.notes["start"].min())
    lines = piece.bar_starts[piece.bar_starts <= first]
    if len(lines):
        return int(lines[-1])
    if len(piece.bar_starts):  # the first bar line comes after the first note: a pickup
        length = int(piece.bar_steps[0])
        return int(piece.bar_starts[0]) - length * -(-(int(piece.bar_starts[0]) - first) // length)
    return first


def piece_melody(piece: GridPiece, encoding: MelodyEncoding = MELODY) -> np.ndarray:
    """A piece on the grid -> its melody's class indices, from its first bar line."""
    start = melody_start(piece)
    steps = int(piece.notes["end"].max()) - start
    events, _ = squash(top_line(piece.notes, start, steps), encoding)
    return encoding.to_classes(events)


def read_piece_grid(piece: Piece) -> GridPiece:
    if piece.kind == "midi":
        return read_grid_midi(piece.path.read_bytes(), piece.id)
    data, pickup = music21_data(piece)
    return read_grid_midi(data, piece.id, pickup=pickup, fit_tempo=False)


def encode_melody_piece(task: tuple[int, Piece, bool]) -> PieceResult:
    """In a worker: (index, [classes], None) or (index, None, why it was skipped). The
    augmentation flag is ignored: melodies are squashed into one key."""
    index, piece, _ = task
    try:
        grid = read_piece_grid(piece)
        if len(grid.notes) == 0:
            return index, None, "no notes (after leaving out drums)"
        classes = piece_melody(grid)
        pitches = len(np.unique(classes[classes >= 2]))
        if pitches < MIN_UNIQUE_PITCHES:
            return index, None, f"{pitches} distinct pitches (fewer than {MIN_UNIQUE_PITCHES})"
        return index, [classes.astype(np.int16)], None
    except Exception as e:  # music21 raises anything from its parsers on odd scores
        return index, None, skip_reason(e)
