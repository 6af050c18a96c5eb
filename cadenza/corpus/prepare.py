"""Turn a source of pieces into token arrays on disk, split by piece, augmented like Magenta.

The output folder holds, per split, `{split}.tokens.npy` (int16, every sequence end to end),
`{split}.offsets.npy` (int64, where each sequence starts, plus the final end) and
`{split}.styles.npy` (int16, each sequence's style: an index into corpus.json's "styles"),
and `corpus.json`, which describes them. Several sources make one corpus of several styles.
Plain .npy, never pickles, so a corpus downloaded from someone else is only ever data.
"""

from __future__ import annotations

import functools
import hashlib
import json
import multiprocessing
import os
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from cadenza.corpus.sources import (
    VALID_SOURCES,
    Piece,
    cap_pieces,
    load_notes,
    resolve_source,
    source_key,
    style_of,
)
from cadenza.errors import CadenzaError, MidiFileError
from cadenza.events import PERFORMANCE
from cadenza.notes import stretch, transpose

FORMAT = "cadenza-corpus/1"
SPLITS = ("train", "valid", "test")
# Magenta's Performance RNN augmentation (performance_rnn_pipeline): every time-stretch of
# the piece, each transposed by every amount that keeps all notes inside the MIDI range.
STRETCH_FACTORS = (0.95, 1.0, 1.05)
TRANSPOSITIONS = tuple(range(-3, 4))
METADATA = "corpus.json"
_SHOWN_REASONS = 5


def split_of(piece_id: str) -> str:
    """train/valid/test (80/10/10) from a hash of the id alone, so that a piece keeps its split
    when pieces are added or removed, on any machine (crc32, unlike hash(), is not salted)."""
    bucket = zlib.crc32(piece_id.encode("utf-8")) % 100
    return "train" if bucket < 80 else "valid" if bucket < 90 else "test"


def augmentations(notes: np.ndarray) -> list[np.ndarray]:
    """The piece stretched, then transposed, as Magenta orders it; up to 21 note arrays."""
    variants = []
    for factor in STRETCH_FACTORS:
        stretched = stretch(notes, factor) if factor != 1.0 else notes
        for semitones in TRANSPOSITIONS:
            moved = transpose(stretched, semitones)
            if moved is not None:
                variants.append(moved)
    return variants


@dataclass
class SplitSummary:
    pieces: list[str] = field(default_factory=list)  # ids, in the order of the sequences
    piece_sequences: list[int] = field(default_factory=list)  # sequences per piece
    events: int = 0
    piece_styles: list[int] = field(default_factory=list)  # style index per piece
    style_events: list[int] = field(default_factory=list)  # events per style index

    @property
    def sequences(self) -> int:
        return sum(self.piece_sequences)

    def to_dict(self) -> dict:
        return {
            "pieces": self.pieces,
            "piece_sequences": self.piece_sequences,
            "sequences": self.sequences,
            "events": self.events,
            "piece_styles": self.piece_styles,
            "style_events": self.style_events,
        }

    def style_line(self, style: int) -> str:
        pieces = sum(1 for s in self.piece_styles if s == style)
        sequences = sum(
            n for s, n in zip(self.piece_styles, self.piece_sequences, strict=True) if s == style
        )
        events = self.style_events[style] if style < len(self.style_events) else 0
        return f"{pieces:>7,} pieces {sequences:>9,} sequences {events:>13,} events"


@dataclass
class CorpusSummary:
    source: str
    out_dir: Path
    splits: dict[str, SplitSummary]
    skipped: list[dict[str, str]]  # {"piece": id, "reason": one line}
    cached: bool = False
    seconds: float = 0.0
    styles: list[str] = field(default_factory=list)  # names; a sequence's style indexes this

    @property
    def pieces(self) -> int:
        return sum(len(s.pieces) for s in self.splits.values())

    def report(self) -> str:
        how = "already prepared" if self.cached else f"{self.seconds:.1f} s"
        lines = [f"corpus {self.source} -> {self.out_dir}: {self.pieces} pieces ({how})"]
        for name, split in self.splits.items():
            lines.append(
                f"  {name:<5} {len(split.pieces):>7,} pieces {split.sequences:>9,} sequences "
                f"{split.events:>13,} events"
            )
        if len(self.styles) > 1:  # one style is the split lines again
            width = max(len(name) for name in self.styles)
            for index, style in enumerate(self.styles):
                for name, split in self.splits.items():
                    label = style if name == SPLITS[0] else ""
                    lines.append(f"  {label:<{width}} {name:<5} {split.style_line(index)}")
        lines.append(f"  skipped {len(self.skipped)}")
        for item in self.skipped[:_SHOWN_REASONS]:
            lines.append(f"    {item['piece']}: {item['reason']}")
        if len(self.skipped) > _SHOWN_REASONS:
            lines.append(f"    ... all of them in {self.out_dir / METADATA}")
        return "\n".join(lines)


# ------------------------------------------------------------------------------------------
def prepare_corpus(
    source: str | Sequence[str],
    out_dir: Path,
    *,
    jobs: int | None = None,
    augment: bool = True,
    limit: int | None = None,
    max_pieces_per_source: int | None = None,
    progress: bool = True,
    force: bool = False,
    representation: str = "performance",
    arrangement: str = "satb",
) -> CorpusSummary:
    """Parse, split, augment (train only) and encode every piece of `source` (one source
    string or several) into `out_dir`, each sequence labelled with its piece's style.

    `limit` keeps the first N pieces of each source; `max_pieces_per_source` then keeps at
    most N of each, chosen by a hash of the piece id (see `cap_pieces`).
    `representation` is "performance" (Magenta's events) or "parts" (a player's part and
    backing parts on a grid, `cadenza.parts`, for the backing model: augmented by
    transposition only); `arrangement` says which parts: "satb" (a chorale's alto, tenor and
    bass) or "bass-chords" (its harmony re-voiced as a bass line and chords).
    Returns at once when `out_dir` already holds this corpus (same sources, pieces, options
    and representation) unless `force`. A piece that fails to parse is skipped and listed
    with its reason. `progress` shows a progress bar and prints the summary at the end.
    """
    started = time.perf_counter()
    out_dir = Path(out_dir)
    sources = [source] if isinstance(source, str) else list(source)
    pieces, piece_styles, styles = gather_pieces(sources, limit, max_pieces_per_source)
    keys = [source_key(s) for s in sources]
    if representation == "performance":
        encode, codec = encode_piece, PERFORMANCE
    elif representation == "parts":
        from cadenza.corpus.parts import ARRANGEMENTS, encode_parts_piece

        if arrangement not in ARRANGEMENTS:
            raise CadenzaError(f"--arrangement: {arrangement!r} is not one of "
                               f"{', '.join(ARRANGEMENTS)}")
        encode = functools.partial(encode_parts_piece, arrangement=arrangement)
        codec = ARRANGEMENTS[arrangement]
    else:
        raise CadenzaError(f"--representation: {representation!r} is not performance or parts")
    # One source keeps exactly the key it always had, so corpora prepared before stay valid.
    key = {
        "format": FORMAT,
        "source": " + ".join(keys),
        "augment": augment,
        "limit": limit,
        "representation": codec.to_dict(),
        "pieces_digest": _digest(pieces),
    }
    if len(keys) > 1:
        key["sources"] = keys
    if max_pieces_per_source is not None:
        key["max_pieces_per_source"] = max_pieces_per_source
    if not force and (summary := _cached(out_dir, key)) is not None:
        if progress:
            print(summary.report())
        return summary

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / METADATA).unlink(missing_ok=True)  # corpus.json last: its presence = complete
    writers = {name: _SplitWriter(out_dir, name) for name in SPLITS}
    tasks = [(i, p, augment and split_of(p.id) == "train") for i, p in enumerate(pieces)]
    # Chunks amortise the pipe; small enough that the bar moves and the cores stay balanced.
    chunksize = max(1, min(32, len(tasks) // ((jobs or os.cpu_count() or 1) * 16)))
    reasons = process_pieces(
        encode,
        tasks,
        pieces,
        writers,
        jobs=jobs,
        chunksize=chunksize,
        desc=f"corpus {key['source']}",
        progress=progress,
        failure=f"no piece of {key['source']} could be read",
    )

    ids = [p.id for p in pieces]
    splits = {
        name: writer.finish(ids, piece_styles, len(styles)) for name, writer in writers.items()
    }
    skipped = [{"piece": pieces[i].id, "reason": r} for i, r in sorted(reasons.items())]
    summary = CorpusSummary(
        key["source"],
        out_dir,
        splits,
        skipped,
        seconds=time.perf_counter() - started,
        styles=styles,
    )
    _write_metadata(out_dir, key, summary, found=len(pieces))
    if progress:
        print(summary.report())
    return summary


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


def load_split(out_dir: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(tokens, offsets) of one split; sequence i is tokens[offsets[i]:offsets[i + 1]].
    The tokens are memory-mapped, so a corpus larger than memory still trains."""
    if split not in SPLITS:
        raise CadenzaError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
    out_dir = Path(out_dir)
    missing = [p.name for p in _corpus_files(out_dir) if not p.is_file()]
    if missing:
        raise CadenzaError(
            f"{out_dir}: no complete corpus (missing {missing[0]}); "
            "run `cadenza corpus prepare` first"
        )
    tokens = np.load(out_dir / f"{split}.tokens.npy", mmap_mode="r", allow_pickle=False)
    offsets = np.load(out_dir / f"{split}.offsets.npy", allow_pickle=False)
    if len(offsets) == 0 or offsets[0] != 0 or offsets[-1] != len(tokens):
        raise CadenzaError(
            f"{out_dir}: {split} offsets do not match its tokens; "
            "run `cadenza corpus prepare --force`"
        )
    return tokens, offsets


def load_styles(out_dir: Path, split: str) -> tuple[np.ndarray, list[str]]:
    """(style index of each sequence of a split as int64, style names). A corpus prepared
    before styles existed has one style, its source's name (music21:bach -> bach)."""
    out_dir = Path(out_dir)
    _, offsets = load_split(out_dir, split)
    meta = json.loads((out_dir / METADATA).read_text())
    path = out_dir / f"{split}.styles.npy"
    if not meta.get("styles") or not path.is_file():
        return np.zeros(len(offsets) - 1, np.int64), [_fallback_style(meta.get("source"))]
    styles = np.load(path, allow_pickle=False).astype(np.int64)
    names = [str(name) for name in meta["styles"]]
    in_range = len(styles) == 0 or (styles.min() >= 0 and styles.max() < len(names))
    if len(styles) != len(offsets) - 1 or not in_range:
        raise CadenzaError(
            f"{path}: styles do not match the {split} sequences; "
            "run `cadenza corpus prepare --force`"
        )
    return styles, names


def corpus_representation(out_dir: str | Path) -> dict:
    """What a prepared corpus's tokens are (its corpus.json `representation`; Performance
    events for a corpus written before there was a choice)."""
    meta = json.loads((Path(out_dir) / METADATA).read_text())
    return dict(meta.get("representation") or PERFORMANCE.to_dict())


def _fallback_style(source: object) -> str:
    name = str(source or "corpus").removeprefix("music21:")
    return Path(name).name or "corpus"


# ------------------------------------------------------------------------------------------
_Result = tuple[int, list[np.ndarray] | None, str | None]


def encode_piece(task: tuple[int, Piece, bool]) -> _Result:
    """In a worker: (index, token arrays, None) or (index, None, why it was skipped).
    Catches everything: one odd file among thousands must never cost the whole run."""
    index, piece, augment = task
    try:
        notes = load_notes(piece)
        if len(notes) == 0:
            return index, None, "no notes (after leaving out drums)"
        variants = augmentations(notes) if augment else [notes]
        return index, [PERFORMANCE.encode(v) for v in variants], None
    except Exception as e:  # music21 raises anything from its parsers on odd scores
        return index, None, skip_reason(e)


def skip_reason(error: Exception) -> str:
    """Why a piece was skipped, in one line."""
    if isinstance(error, MidiFileError):
        return error.problem
    return _one_line(f"{type(error).__name__}: {error}")


def process_pieces(
    work: Callable[[Any], tuple[int, Any, str | None]],
    tasks: list,
    pieces: Sequence[Piece],
    writers: dict,
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


class _SplitWriter:
    """Appends sequences to a raw side file as workers finish (in any order, in bounded
    memory), then lays them out in piece order, so the output never depends on scheduling."""

    def __init__(self, out_dir: Path, name: str):
        self.out_dir, self.name = out_dir, name
        self.part = out_dir / f".{name}.tokens.part"
        self.file = open(self.part, "wb")  # closed in close(), after the run
        self.placed: dict[int, tuple[int, list[int]]] = {}  # piece -> (position, lengths)
        self.position = 0

    def add(self, index: int, sequences: list[np.ndarray]) -> None:
        lengths = [len(s) for s in sequences]
        self.placed[index] = (self.position, lengths)
        for seq in sequences:
            self.file.write(np.ascontiguousarray(seq, dtype=np.int16).tobytes())
        self.position += sum(lengths)

    def close(self) -> None:
        if not self.file.closed:
            self.file.close()

    def finish(self, ids: list[str], piece_styles: list[int], n_styles: int) -> SplitSummary:
        total = self.position
        tokens_path = self.out_dir / f"{self.name}.tokens.npy"
        offsets: list[int] = [0]
        styles: list[int] = []  # per sequence
        summary = SplitSummary(events=total, style_events=[0] * n_styles)
        if total == 0:
            np.save(tokens_path, np.zeros(0, np.int16), allow_pickle=False)
        else:
            raw = np.memmap(self.part, dtype=np.int16, mode="r", shape=(total,))
            out = np.lib.format.open_memmap(tokens_path, mode="w+", dtype=np.int16, shape=(total,))
            at = 0
            for index in sorted(self.placed):
                position, lengths = self.placed[index]
                size = sum(lengths)
                out[at : at + size] = raw[position : position + size]
                for length in lengths:
                    offsets.append(offsets[-1] + length)
                at += size
                style = piece_styles[index]
                styles.extend([style] * len(lengths))
                summary.pieces.append(ids[index])
                summary.piece_sequences.append(len(lengths))
                summary.piece_styles.append(style)
                summary.style_events[style] += size
            out.flush()
            del out, raw
        np.save(
            self.out_dir / f"{self.name}.offsets.npy",
            np.asarray(offsets, dtype=np.int64),
            allow_pickle=False,
        )
        np.save(
            self.out_dir / f"{self.name}.styles.npy",
            np.asarray(styles, dtype=np.int16),
            allow_pickle=False,
        )
        self.part.unlink(missing_ok=True)
        return summary


# ------------------------------------------------------------------------------------------
def _digest(pieces: list[Piece]) -> str:
    """Changes when a piece is added, removed or its file rewritten: the cache key's core."""
    h = hashlib.sha1()
    for piece in pieces:
        stat = piece.path.stat()
        h.update(f"{piece.id}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _corpus_files(out_dir: Path) -> list[Path]:
    names = [f"{s}.{kind}.npy" for s in SPLITS for kind in ("tokens", "offsets")]
    return [out_dir / METADATA] + [out_dir / name for name in names]


def _cached(out_dir: Path, key: dict) -> CorpusSummary | None:
    if not all(p.is_file() for p in _corpus_files(out_dir)):
        return None
    try:
        meta = json.loads((out_dir / METADATA).read_text())
        # The optional fields too: a capped corpus is no hit for an uncapped request.
        if any(meta.get(k) != key.get(k) for k in {*key, "sources", "max_pieces_per_source"}):
            return None
        if meta.get("styles") and not all(
            (out_dir / f"{name}.styles.npy").is_file() for name in SPLITS
        ):
            return None
        splits = {}
        for name in SPLITS:
            split = meta["splits"][name]
            pieces = list(split["pieces"])
            events = int(split["events"])
            splits[name] = SplitSummary(  # corpora from before styles: one style, index 0
                pieces,
                list(split["piece_sequences"]),
                events,
                list(split.get("piece_styles", [0] * len(pieces))),
                list(split.get("style_events", [events])),
            )
        styles = list(meta.get("styles") or [_fallback_style(meta["source"])])
        return CorpusSummary(
            meta["source"], out_dir, splits, meta["skipped"], cached=True, styles=styles
        )
    except (ValueError, KeyError, TypeError):  # an older or hand-edited file: rebuild
        return None


def _write_metadata(out_dir: Path, key: dict, summary: CorpusSummary, found: int) -> None:
    meta = {
        **key,
        "augmentation": {
            "splits": ["train"] if key["augment"] else [],
            "stretch_factors": list(STRETCH_FACTORS)
            if key["representation"]["kind"] == "performance"
            else [1.0],
            "transpositions": list(TRANSPOSITIONS),
        },
        "styles": summary.styles,
        "splits": {name: split.to_dict() for name, split in summary.splits.items()},
        "skipped": summary.skipped,
        "counts": {
            "pieces_found": found,
            "pieces": summary.pieces,
            "skipped": len(summary.skipped),
            "sequences": sum(s.sequences for s in summary.splits.values()),
            "events": sum(s.events for s in summary.splits.values()),
        },
        "seconds": round(summary.seconds, 2),
    }
    tmp = out_dir / f".{METADATA}.tmp"
    tmp.write_text(json.dumps(meta, indent=1) + "\n")
    os.replace(tmp, out_dir / METADATA)  # atomic: a reader sees the old file or the whole new one


def _one_line(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
