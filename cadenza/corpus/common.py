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
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, Protocol

from tqdm import tqdm

from cadenza.atomic import atomic_write_text
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
        for index, output, reason in pool_map(work, tasks, jobs, chunksize):
            if output is None:
                reasons[index] = reason or "unknown error"
            else:
                writers[split_of(pieces[index].id)].add(index, output)
            bar.update()
            bar.set_postfix(skipped=len(reasons), refresh=False)
    except WorkerDied as e:
        raise e.error(desc, [str(pieces[i].path) for i in e.indices], "the corpus") from None
    finally:
        bar.close()
        for writer in writers.values():
            writer.close()
    if len(reasons) == len(pieces):
        first = next(iter(sorted(reasons.items())))[1] if reasons else "no pieces"
        raise CadenzaError(f"{failure} (first: {first})")
    return reasons


def pool_map(work: Callable, tasks: list, jobs: int | None, chunksize: int = 1, *,
             start_method: str | None = None) -> Iterator:
    """work(task) for each task (its first item the task's index), in any order, on `jobs`
    processes (None: all cores; 1: in this one); `start_method` ("spawn", ...) as
    multiprocessing names it, None for the platform's. Raises WorkerDied when a worker dies."""
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(tasks)))
    if jobs == 1:  # in-process: no worker start-up, and a debugger sees everything
        yield from map(work, tasks)
        return
    # concurrent.futures, not multiprocessing.Pool: a worker that dies (OOM-killed, a C
    # library's abort) breaks the pool, where Pool would wait for its result forever. Each
    # worker says which task it starts, so that the death can name the piece.
    del chunksize  # one task a future: the task that was running is the one that is known
    context = multiprocessing.get_context(start_method)
    started: Any = context.SimpleQueue()
    done: set[int] = set()
    with ProcessPoolExecutor(jobs, mp_context=context, initializer=_worker_init,
                             initargs=(started,)) as pool:
        futures = {pool.submit(_run_task, work, task): task[0] for task in tasks}
        try:
            for future in as_completed(futures):
                result = future.result()
                done.add(futures[future])
                yield result
        except BrokenProcessPool:
            running: list[int] = []
            while not started.empty():
                index = started.get()
                if index not in done and index not in running:
                    running.append(index)
            raise WorkerDied(sorted(running)) from None
        finally:
            for future in futures:
                future.cancel()


class WorkerDied(Exception):
    """A worker process ended without a result (killed, out of memory, aborted) while it
    processed the pieces at these indices (those started and not finished)."""

    def __init__(self, indices: list[int]):
        super().__init__(indices)
        self.indices = indices

    @staticmethod
    def error(desc: str, files: list[str], product: str) -> CadenzaError:
        """The one line a run ends with: which files a dead worker was processing."""
        files = files or ["an unknown piece"]
        which = files[0] if len(files) == 1 else "one of " + ", ".join(files)
        return CadenzaError(f"{desc}: a worker process died (killed, out of memory, or "
                            f"crashed) while processing {which}; {product} was not finished")


_started: Any = None


def _worker_init(started: Any) -> None:
    global _started
    _started = started


def _run_task(work: Callable, task: Any) -> PieceResult:
    if _started is not None:
        _started.put(task[0])
    return work(task)


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
    atomic_write_text(path, json.dumps(meta, indent=1) + "\n")
