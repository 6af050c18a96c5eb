"""The training corpus: sources of pieces (music21's scores, MIDI folders), token caches, splits."""

from cadenza.corpus.prepare import (
    CorpusSummary,
    load_split,
    load_styles,
    prepare_corpus,
    split_of,
)
from cadenza.corpus.sources import DEFAULT_SOURCE, Piece, load_notes, resolve_source

__all__ = [
    "DEFAULT_SOURCE",
    "CorpusSummary",
    "Piece",
    "load_notes",
    "load_split",
    "load_styles",
    "prepare_corpus",
    "resolve_source",
    "split_of",
]
