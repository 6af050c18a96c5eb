"""What every corpus builder shares: the token corpus (`corpus prepare`, events or parts) and
the audio corpus (`corpus render`) both gather the pieces of their sources, split them by
piece, process them on all cores into one writer per split, list the pieces they skipped
and why, key their cache on the pieces' files, and write their metadata file last.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from tqdm import tqdm

from cadenza.corpus.sources import VALID_SOURCES, Piece, cap_pieces, resolve_source, style_of
from cadenza.errors import CadenzaError, MidiFileError

SPLITS = ("train", "valid", "test")
# Transpositions of a training piece, in semitones: Magenta's Performance RNN augmentation
# (performance_rnn_pipeline), kept by the parts corpus too.
TRANSPOSITIONS = tuple(range(-3, 4))

# What a worker returns for one piece: (its index, its output, None) or (index, None, why
# it was skipped).
PieceResult = tuple[int, Any, str | None]


class SplitWriter(Protocol):
    """Where the outputs of one split's pieces go, in any order, as workers finish."""

    def add(self, index: int, output: Any) -> None: ...

    def close(self) -> None: ...


def split_of(piece_id: str) -> str:
    """train/valid/test (80/10/10) from a hash of the id alone, so that a piece keeps its split
    when pieces are added or removed, on any machine (crc32, unlike hash(), is not salted)."""
    bucket = zlib.crc32(piece_id.encode("utf-8")) % 100
    return "train" if bucket < 80 else "valid" if bucket < 90 else "test"


def gather_pieces(
    sources: Sequence[str], limit: int | None = None, most: int | None = None
) -> tuple[list[Piece], list[int], list[str]]:
    """The pieces of every source in order, each piece's style index, and the style names
    (in order of first appearance). Piece ids stay those of their source, so a piece keeps
    its split whether it is prepared alone or with others; two sources sharing an id (the
    same source twice, or two folders holding the same relative path) are an error."""
    if not sources:
        raise CadenzaError(f"no corpus source given; valid: {VALID_SOURCES}")
    pieces: list[Piece] = []
    piece_styles: list[int] = []
    styles: list[str] = []
    owner: dict[str, str] = {}
    for source in sources:
        for piece in cap_pieces(resolve_source(source)[:limit], most):
            if piece.id in owner:
                raise CadenzaError(
                    f"corpus source {source!r}: piece {piece.id!r} is also in "
                    f"{owner[piece.id]!r}; give each source once, folders with distinct names"
                )
            owner[piece.id] = source
            style = style_of(source, piece)
            if style not in styles:
                styles.append(style)
            pieces.append(piece)
            piece_styles.append(styles.index(style))
    return pieces, piece_styles, styles


def skip_reason(error: Exception) -> str:
    """Why a piece was skipped, in one line."""
    if isinstance(error, MidiFileError):
        return error.problem
    return one_line(f"{type(error).__name__}: {error}")


def one_line(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def process_pieces(
    work: Callable[[Any], PieceResult],
    tasks: list,
    pieces: Sequence[Piece],
    writers: dict[str, SplitWriter],
    *,
    jobs: int | None,
    chunksize: int,
    desc: str,
    progress: bool,
    failure: str,
) -> dict[int, str]:
    """Run `work` over `tasks` on all cores (each task's first item is its piece's index);
    each result `(index, output, reason)` goes to the writer of its piece's split, a failed
    piece's reason is kept. Returns the reasons; raises `failure` if no piece worked."""
    reasons: dict[int, str] = {}
    bar = tqdm(total=len(tasks), unit="piece", desc=desc, disable=not progress)
    try:
        for index, output, reason in _pool_map(work, tasks, jobs, chunksize):
            if output is None:
                reasons[index] = reason or "unknown error"
            else:
                writers[split_of(pieces[index].id)].add(index, output)
            bar.update()
            bar.set_postfix(skipped=len(reasons), refresh=False)
    finally:
        bar.close()
        for writer in writers.values():
            writer.close()
    if len(reasons) == len(pieces):
        first = next(iter(sorted(reasons.items())))[1] if reasons else "no pieces"
        raise CadenzaError(f"{failure} (first: {first})")
    return reasons


def _pool_map(work: Callable, tasks: list, jobs: int | None, chunksize: int) -> Iterator:
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(tasks)))
    if jobs == 1:  # in-process: no worker start-up, and a debugger sees everything
        yield from map(work, tasks)
        return
    with multiprocessing.Pool(jobs) as pool:
        yield from pool.imap_unordered(work, tasks, chunksize=chunksize)


def pieces_digest(pieces: list[Piece]) -> str:
    """Changes when a piece is added, removed or its file rewritten: the cache key's core."""
    h = hashlib.sha1()
    for piece in pieces:
        stat = piece.path.stat()
        h.update(f"{piece.id}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return h.hexdigest()


def write_metadata(path: Path, meta: dict) -> None:
    """The corpus' metadata file, written last: its presence means the corpus is complete.
    Atomic: a reader sees the old file or the whole new one."""
    tmp = path.parent / f".{path.name}.tmp"
    tmp.write_text(json.dumps(meta, indent=1) + "\n")
    os.replace(tmp, path)
