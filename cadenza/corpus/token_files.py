"""A prepared token corpus on disk, written split by split and read back.

Per split, `{split}.tokens.npy` (int16, every sequence end to end), `{split}.offsets.npy`
(int64, where each sequence starts, plus the final end) and `{split}.styles.npy` (int16,
each sequence's style: an index into corpus.json's "styles"); `corpus.json` describes them.
Plain .npy, never pickles, so a corpus downloaded from someone else is only ever data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cadenza.atomic import atomic_path
from cadenza.corpus.common import SPLITS
from cadenza.errors import CadenzaError
from cadenza.events import PERFORMANCE

METADATA = "corpus.json"


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



def corpus_files(out_dir: Path) -> list[Path]:
    names = [f"{s}.{kind}.npy" for s in SPLITS for kind in ("tokens", "offsets")]
    return [out_dir / METADATA] + [out_dir / name for name in names]


def load_split(out_dir: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(tokens, offsets) of one split; sequence i is tokens[offsets[i]:offsets[i + 1]].
    The tokens are memory-mapped, so a corpus larger than memory still trains."""
    if split not in SPLITS:
        raise CadenzaError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
    out_dir = Path(out_dir)
    missing = [p.name for p in corpus_files(out_dir) if not p.is_file()]
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
        return np.zeros(len(offsets) - 1, np.int64), [fallback_style(meta.get("source"))]
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


def fallback_style(source: object) -> str:
    name = str(source or "corpus").removeprefix("music21:")
    return Path(name).name or "corpus"


def _save(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        np.save(tmp, array, allow_pickle=False)


class TokenSplitWriter:
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
            _save(tokens_path, np.zeros(0, np.int16))
        else:
            raw = np.memmap(self.part, dtype=np.int16, mode="r", shape=(total,))
            with atomic_path(tokens_path) as tmp:
                out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.int16, shape=(total,))
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
        _save(self.out_dir / f"{self.name}.offsets.npy", np.asarray(offsets, dtype=np.int64))
        _save(self.out_dir / f"{self.name}.styles.npy", np.asarray(styles, dtype=np.int16))
        self.part.unlink(missing_ok=True)
        return summary
