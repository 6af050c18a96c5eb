"""Source strings -> pieces -> notes, over music21's real scores and real MIDI files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cadenza.corpus.sources import (
    Piece,
    load_notes,
    music21_midi_bytes,
    resolve_source,
    source_key,
)
from cadenza.errors import CadenzaError, MidiFileError
from cadenza.midi import parse_midi_bytes, performed_notes, write_midi
from cadenza.notes import NOTE_DTYPE


@pytest.fixture(scope="module")
def bach() -> list[Piece]:
    return resolve_source("music21:bach")


@pytest.fixture(scope="module")
def folk() -> list[Piece]:
    return resolve_source("music21:folk")


@pytest.fixture(scope="module")
def chorale_notes(bach: list[Piece]) -> np.ndarray:
    return load_notes(bach[0])


def test_default_source_is_bach(bach: list[Piece]) -> None:
    assert resolve_source() == bach
    ids = [p.id for p in bach]
    assert len(bach) > 400
    assert ids[0] == "bach/bwv1.6"
    assert len(set(ids)) == len(ids)
    assert all(p.kind == "music21" and p.id.startswith("bach/") for p in bach)


def test_one_piece_per_work_and_no_analyses(bach: list[Piece]) -> None:
    # bwv277 ships as .krn and .mxl: two copies could straddle the train/test split.
    (bwv277,) = [p for p in bach if p.id == "bach/bwv277"]
    assert bwv277.path.suffix == ".mxl"
    assert not any(p.path.suffix == ".rntxt" for p in bach)


def test_palestrina() -> None:
    pieces = resolve_source("music21:palestrina")
    assert len(pieces) > 1000
    assert all(p.id.startswith("palestrina/") and p.path.suffix == ".krn" for p in pieces)


def test_folk_tunes_of_an_opus_are_pieces(folk: list[Piece]) -> None:
    pieces = folk
    ids = [p.id for p in pieces]
    assert len(set(ids)) == len(ids) > 10_000
    assert {p.path.parent.name for p in pieces} == {
        "ryansMammoth",
        "essenFolksong",
        "oneills1850",
    }
    altdeu = [p for p in pieces if p.path.name == "altdeu10.abc"]
    assert len(altdeu) > 100
    assert altdeu[0].id == "folk/essenFolksong/altdeu10#1"
    first, second = load_notes(altdeu[0]), load_notes(altdeu[1])
    assert len(first) and len(second)
    assert not np.array_equal(first["pitch"], second["pitch"])


def test_music21_piece_becomes_notes_through_midi(bach: list[Piece], chorale_notes) -> None:
    assert chorale_notes.dtype == NOTE_DTYPE
    assert len(chorale_notes) > 100
    assert chorale_notes["end"].max() > 10.0  # a chorale lasts a good half minute
    assert 30 <= chorale_notes["pitch"].min() and chorale_notes["pitch"].max() <= 90
    midi = parse_midi_bytes(music21_midi_bytes(bach[0]), bach[0].id)
    assert np.array_equal(performed_notes(midi), chorale_notes)


def test_folder_is_recursive_and_sorted(tmp_path: Path, chorale_notes) -> None:
    for name in ["z.midi", "a.mid", "sub/b.MID", "sub/deeper/c.mid"]:
        write_midi(chorale_notes[:20], tmp_path / name)
    (tmp_path / "readme.txt").write_text("not music")
    pieces = resolve_source(str(tmp_path))
    assert [p.id for p in pieces] == ["a.mid", "sub/b.MID", "sub/deeper/c.mid", "z.midi"]
    assert all(p.kind == "midi" for p in pieces)
    notes = load_notes(pieces[0])
    assert np.array_equal(notes["pitch"], chorale_notes[:20]["pitch"])


def test_bad_midi_file_raises_midi_file_error(tmp_path: Path) -> None:
    (tmp_path / "bad.mid").write_text("hello")
    (piece,) = resolve_source(str(tmp_path))
    with pytest.raises(MidiFileError, match="no MThd"):
        load_notes(piece)


@pytest.mark.parametrize("source", ["music21:mozart", "no/such/folder", "bach"])
def test_unknown_source_names_the_valid_ones(source: str) -> None:
    with pytest.raises(CadenzaError) as info:
        resolve_source(source)
    message = str(info.value)
    assert "\n" not in message
    assert "music21:bach, music21:palestrina, music21:folk" in message
    assert source in message


def test_folder_without_midi_files(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("C D E")
    with pytest.raises(CadenzaError, match="no .mid/.midi files"):
        resolve_source(str(tmp_path))


def test_source_key_makes_folders_absolute(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert source_key("music21:bach") == "music21:bach"
    assert source_key("data") == str(tmp_path.resolve() / "data")


def test_tune_with_alternating_metre_translates(folk: list[Piece]) -> None:
    # music21's ABC reader shares one TimeSignature between measures here; its MIDI
    # translation fails on that unless the marks are unshared first.
    (piece,) = [p for p in folk if p.id == "folk/essenFolksong/altdeu10#5"]
    assert len(load_notes(piece)) > 20
