"""Where pieces come from: music21's bundled scores or a folder of MIDI files.

A source string resolves to a list of `Piece`s, cheaply (no parsing): the parsing happens
later, in worker processes, through `load_notes`. Every piece reaches notes through MIDI
bytes and `cadenza.midi`, so a chorale from music21 and a file from MAESTRO are read by
exactly the same code (sustain pedal, drums, zero-length notes, tempo changes).
"""

from __future__ import annotations

import copy
import re
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from cadenza.errors import CadenzaError
from cadenza.midi import parse_midi_bytes, performed_notes, read_midi

DEFAULT_SOURCE = "music21:bach"
MIDI_SUFFIXES = (".mid", ".midi")

# music21 corpus folders per named source. Folk is three collections of .abc files; most
# hold many tunes each (an Opus), and every tune is one piece.
MUSIC21_SOURCES: dict[str, tuple[str, ...]] = {
    "bach": ("bach",),
    "palestrina": ("palestrina",),
    "folk": ("ryansMammoth", "essenFolksong", "oneills1850"),
    # Everyone else music21 ships: string quartets, sonatas, madrigals, trecento songs, rags.
    "composers": (
        "beethoven", "mozart", "haydn", "schubert", "schumann_robert", "schumann_clara",
        "chopin", "handel", "cpebach", "corelli", "monteverdi", "josquin", "trecento",
        "ciconia", "luca", "lusitano", "verdi", "weber", "beach", "joplin", "johnson_j_r",
        "liliuokalani",
    ),
    # The monophonic tunes, for the Melody RNN (`--representation melody`).
    "tunes": ("essenFolksong", "oneills1850", "airdsAirs", "ryansMammoth"),
}
VALID_SOURCES = ", ".join(f"music21:{name}" for name in MUSIC21_SOURCES) + (
    ", or a folder of .mid/.midi files"
)

# When music21 holds one work in several encodings (Bach's bwv277 is both .krn and .mxl),
# one is kept: the copies would count twice and could land in different splits.
_SCORE_PREFERENCE = (".mxl", ".xml", ".musicxml", ".krn", ".abc")
# Only these suffixes are read: Roman-numeral analyses (bach/choraleAnalyses/*.rntxt) are
# chord labels, not the music.
_ABC_TUNE = re.compile(r"^\s*X:\s*(\d+)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Piece:
    """One work: a MIDI file, a music21 score file, or tune `number` of a music21 opus."""

    id: str  # stable across runs and machines: the split is a hash of it
    path: Path
    kind: str  # "midi" or "music21"
    number: int | None = None  # the tune's X: reference number inside an .abc opus


def resolve_source(source: str = DEFAULT_SOURCE) -> list[Piece]:
    """The pieces of a source string, in a stable order; a bad source is a CadenzaError."""
    if source.startswith("music21:"):
        name = source.removeprefix("music21:")
        if name not in MUSIC21_SOURCES:
            raise CadenzaError(f"unknown corpus source {source!r}; valid: {VALID_SOURCES}")
        return music21_pieces(name)
    folder = Path(source).expanduser()
    if folder.is_dir():
        return folder_pieces(folder)
    raise CadenzaError(
        f"corpus source {source!r} is neither a known source nor a folder; valid: {VALID_SOURCES}"
    )


def source_key(source: str) -> str:
    """The source as recorded in corpus.json: folders absolute, so a cache hit means the same
    folder whatever the working directory was."""
    if source.startswith("music21:"):
        return source
    return str(Path(source).expanduser().resolve())


def style_of(source: str, piece: Piece) -> str:
    """The style label of a piece of `source`: the music21 source's name (bach, palestrina,
    folk); in a folder, the piece's first sub-folder (maestro/chopin/x.mid -> chopin), or the
    folder's own name for files at its top."""
    if source.startswith("music21:"):
        return source.removeprefix("music21:")
    parts = PurePosixPath(piece.id).parts
    if len(parts) > 1:
        return parts[0]
    return Path(source).expanduser().resolve().name or "corpus"


def cap_pieces(pieces: list[Piece], most: int | None) -> list[Piece]:
    """At most `most` of `pieces`, chosen by a hash of the id (so the same ones on every run
    and machine, and a piece's choice does not depend on the others), kept in their order.
    The hash is salted so that the choice does not correlate with `split_of`, which hashes
    the bare id."""
    if most is None or len(pieces) <= most:
        return pieces
    if most < 1:
        raise CadenzaError(f"--max-pieces-per-source must be at least 1, not {most}")
    ranked = sorted(pieces, key=lambda p: (zlib.crc32(b"cap\0" + p.id.encode("utf-8")), p.id))
    kept = {p.id for p in ranked[:most]}
    return [p for p in pieces if p.id in kept]


def folder_pieces(folder: Path) -> list[Piece]:
    """Every .mid/.midi file under `folder` (any depth, any case), sorted by relative path."""
    paths = sorted(
        (p for p in folder.rglob("*") if p.suffix.lower() in MIDI_SUFFIXES and p.is_file()),
        key=lambda p: p.relative_to(folder).as_posix(),
    )
    if not paths:
        raise CadenzaError(f"no .mid/.midi files under {folder}; valid: {VALID_SOURCES}")
    return [Piece(p.relative_to(folder).as_posix(), p, "midi") for p in paths]


def music21_pieces(name: str) -> list[Piece]:
    """The pieces of one named music21 source. Ids are the path inside music21's corpus
    without its suffix (`bach/bwv1.6`), opus tunes `folk/<file>#<number>`."""
    root = _music21_corpus_root()
    by_id: dict[str, Path] = {}
    for folder in MUSIC21_SOURCES[name]:
        for path in sorted((root / folder).rglob("*")):
            if not path.is_file() or path.suffix not in _SCORE_PREFERENCE:
                continue
            piece_id = path.relative_to(root).with_suffix("").as_posix()
            kept = by_id.get(piece_id)
            if kept is None or _rank(path) < _rank(kept):
                by_id[piece_id] = path
    pieces: list[Piece] = []
    for piece_id, path in sorted(by_id.items()):
        if path.suffix == ".abc":
            prefix = f"{name}/{path.relative_to(root).with_suffix('').as_posix()}"
            numbers = abc_tune_numbers(path)
            if not numbers:  # a lone tune without an X: line is still a tune
                pieces.append(Piece(prefix, path, "music21"))
            for number in numbers:
                pieces.append(Piece(f"{prefix}#{number}", path, "music21", number))
        else:
            pieces.append(Piece(piece_id, path, "music21"))
    return pieces


def abc_tune_numbers(path: Path) -> list[int]:
    """The X: reference numbers of the tunes in an .abc file, in file order, without parsing
    the music (music21 can then parse one tune of a 1000-tune file on its own)."""
    text = path.read_text(encoding="utf-8", errors="replace")
    return list(dict.fromkeys(int(n) for n in _ABC_TUNE.findall(text)))


def _rank(path: Path) -> int:
    return _SCORE_PREFERENCE.index(path.suffix)


def _music21_corpus_root() -> Path:
    try:  # music21 is optional (the train extra) and slow to import: only when it is used
        from music21 import corpus
    except ImportError:
        raise CadenzaError(
            "music21 is not installed; `pip install cadenza[train]` or use a MIDI folder"
        ) from None
    return Path(corpus.__file__).parent


# ------------------------------------------------------------------------------------------
def music21_midi_bytes(piece: Piece) -> bytes:
    """A music21 piece as standard MIDI file bytes, by music21's own MIDI translation."""
    from music21 import converter, midi, stream  # optional and slow to import: see above

    with warnings.catch_warnings():  # music21 warns per odd bar; the skip list is the report
        warnings.simplefilter("ignore")
        # forceSource: parse the file itself, neither reading nor writing music21's pickles.
        score = converter.parseFile(piece.path, number=piece.number, forceSource=True)
        if isinstance(score, stream.Opus):  # a lone .abc file whose one tune has no number
            score = score.scores[0]
        _unshare_marks(score)
        return midi.translate.streamToMidiFile(score).writestr()


def _music21_score(piece: Piece):
    from music21 import converter, stream  # optional and slow to import: see above

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        score = converter.parseFile(piece.path, number=piece.number, forceSource=True)
    return score.scores[0] if isinstance(score, stream.Opus) else score


def _pickup(score) -> float:
    first = score.recurse().getElementsByClass("Measure").first()
    if first is None or not first.paddingLeft:
        return 0.0
    return float(first.duration.quarterLength)


def music21_pickup(piece: Piece) -> float:
    """Quarters before the first bar line of a music21 score (0 without a pickup bar)."""
    return _pickup(_music21_score(piece))


def music21_data(piece: Piece) -> tuple[bytes, float]:
    """A music21 piece's MIDI bytes and its pickup, from one parse (parsing is the slow part).
    When music21's MIDI writer refuses the score as parsed (some ABC meters), the corpus's
    own reader, which mends them, makes the bytes."""
    from music21 import midi  # optional and slow to import: see above

    score = _music21_score(piece)
    pickup = _pickup(score)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return midi.translate.streamToMidiFile(score).writestr(), pickup
    except Exception:  # music21 raises many kinds
        return music21_midi_bytes(piece), pickup


_MARKS = ("TimeSignature", "KeySignature", "MetronomeMark")


def _unshare_marks(score) -> None:
    """Give every measure its own meter/key/tempo object. music21's ABC reader puts one
    TimeSignature object in several measures of a tune whose metre alternates (many of
    Essen's), and its MIDI translation then fails ("already found in this Stream")."""
    seen: set[int] = set()
    for container in score.recurse(streamsOnly=True, includeSelf=True):
        for mark in list(container.getElementsByClass(_MARKS)):
            if id(mark) in seen:
                container.replace(mark, copy.deepcopy(mark))
            else:
                seen.add(id(mark))


def load_notes(piece: Piece) -> np.ndarray:
    """The piece's notes as heard (pedal applied, no drums). Raises on a bad file: a MIDI
    problem as MidiFileError, a music21 failure as whatever music21 raised."""
    if piece.kind == "midi":
        content = read_midi(piece.path)
    else:
        content = parse_midi_bytes(music21_midi_bytes(piece), piece.id)
    return performed_notes(content, sustain=True, drums=False)
