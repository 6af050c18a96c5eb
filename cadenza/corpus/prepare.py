"""Turn a source of pieces into token arrays on disk, split by piece, augmented like Magenta.

The files are cadenza.corpus.token_files'; several sources make one corpus of several
styles. This module keeps the names its readers import (load_split, load_styles,
corpus_representation, split_of, SPLITS, METADATA) working.
"""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cadenza.corpus.common import (
    SPLITS,
    TRANSPOSITIONS,
    PieceResult,
    gather_pieces,
    pieces_digest,
    process_pieces,
    skip_reason,
    split_of,
    write_metadata,
)
from cadenza.corpus.melodies import MELODY, encode_melody_piece
from cadenza.corpus.parts import ARRANGEMENTS, encode_parts_piece
from cadenza.corpus.sources import Piece, load_notes, source_key
from cadenza.corpus.token_files import (
    METADATA,
    SplitSummary,
    TokenSplitWriter,
    corpus_files,
    corpus_representation,
    fallback_style,
    load_split,
    load_styles,
)
from cadenza.errors import CadenzaError
from cadenza.events import PERFORMANCE
from cadenza.notes import stretch, transpose

__all__ = [  # with the names of token_files and common this module's callers import
    "FORMAT",
    "METADATA",
    "SPLITS",
    "STRETCH_FACTORS",
    "TRANSPOSITIONS",
    "CorpusSummary",
    "augmentations",
    "corpus_representation",
    "encode_piece",
    "gather_pieces",
    "load_split",
    "load_styles",
    "prepare_corpus",
    "split_of",
]

FORMAT = "cadenza-corpus/1"
# Magenta's Performance RNN augmentation (performance_rnn_pipeline): every time-stretch of
# the piece, each transposed by every amount that keeps all notes inside the MIDI range.
STRETCH_FACTORS = (0.95, 1.0, 1.05)
_SHOWN_REASONS = 5


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
    `representation` is "performance" (Magenta's events), "melody" (a monophonic line on the
    grid, `cadenza.corpus.melodies`, for the Melody RNN) or "parts" (a player's part and
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
        if arrangement not in ARRANGEMENTS:
            raise CadenzaError(f"--arrangement: {arrangement!r} is not one of "
                               f"{', '.join(ARRANGEMENTS)}")
        encode = functools.partial(encode_parts_piece, arrangement=arrangement)
        codec = ARRANGEMENTS[arrangement]
    elif representation == "melody":  # squashed into one key: nothing to augment
        encode, codec, augment = encode_melody_piece, MELODY, False
    else:
        raise CadenzaError(f"--representation: {representation!r} is not performance, parts "
                           "or melody")
    # One source keeps exactly the key it always had, so corpora prepared before stay valid.
    key = {
        "format": FORMAT,
        "source": " + ".join(keys),
        "augment": augment,
        "limit": limit,
        "representation": codec.to_dict(),
        "pieces_digest": pieces_digest(pieces),
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
    writers = {name: TokenSplitWriter(out_dir, name) for name in SPLITS}
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


# ------------------------------------------------------------------------------------------
def encode_piece(task: tuple[int, Piece, bool]) -> PieceResult:
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


# ------------------------------------------------------------------------------------------
def _cached(out_dir: Path, key: dict) -> CorpusSummary | None:
    if not all(p.is_file() for p in corpus_files(out_dir)):
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
        styles = list(meta.get("styles") or [fallback_style(meta["source"])])
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
    write_metadata(out_dir / METADATA, meta)
