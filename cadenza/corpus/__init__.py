"""The training corpus: sources of pieces (music21's scores, MIDI folders), token caches, splits."""

from cadenza.corpus.common import split_of
from cadenza.corpus.prepare import CorpusSummary, prepare_corpus
from cadenza.corpus.sources import DEFAULT_SOURCE, Piece, load_notes, resolve_source
from cadenza.corpus.token_files import load_split, load_styles

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
