"""prepare_corpus over real scores and real (and broken) MIDI files: splits, augmentation,
the files on disk, the cache."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cadenza.corpus.common import SPLITS, split_of
from cadenza.corpus.prepare import CorpusSummary, prepare_corpus
from cadenza.corpus.sources import load_notes, resolve_source
from cadenza.corpus.token_files import load_split
from cadenza.errors import CadenzaError
from cadenza.events import PERFORMANCE
from cadenza.midi import write_midi
from cadenza.notes import DRUM_CHANNEL

LIMIT = 8  # bach's first 8 pieces: 6 train, bwv10.7 valid, bwv108.6 test
AUGMENTED = 21  # 7 transpositions x 3 stretches: a chorale never leaves the MIDI range


@pytest.fixture(scope="module")
def bach(tmp_path_factory) -> tuple[CorpusSummary, Path]:
    out = tmp_path_factory.mktemp("bach")
    return prepare_corpus("music21:bach", out, limit=LIMIT, jobs=2, progress=False), out


@pytest.fixture(scope="module")
def midi_folder(tmp_path_factory) -> Path:
    """Four chorales written as MIDI files, plus files no corpus should choke on."""
    folder = tmp_path_factory.mktemp("midi")
    for i, piece in enumerate(resolve_source("music21:bach")[10:14]):
        path = write_midi(load_notes(piece), folder / "chorales" / f"chorale{i}.mid")
    (folder / "empty.mid").write_bytes(b"")
    good = path.read_bytes()
    (folder / "truncated.mid").write_bytes(good[: len(good) // 2])
    (folder / "notes.mid").write_text("this is a text file, not MIDI\n")
    write_midi(load_notes(piece)[:10], folder / "drums.midi", channel=DRUM_CHANNEL)
    return folder


@pytest.fixture(scope="module")
def folder_corpus(midi_folder: Path, tmp_path_factory) -> tuple[CorpusSummary, Path]:
    out = tmp_path_factory.mktemp("folder-corpus")
    return prepare_corpus(str(midi_folder), out, jobs=2, progress=False), out


def test_split_is_by_piece_and_from_the_id(bach) -> None:
    summary, _ = bach
    ids = [p.id for p in resolve_source("music21:bach")[:LIMIT]]
    seen = [pid for name in SPLITS for pid in summary.splits[name].pieces]
    assert sorted(seen) == sorted(ids)  # every piece in exactly one split
    for name in SPLITS:
        assert all(split_of(pid) == name for pid in summary.splits[name].pieces)
    assert summary.splits["valid"].pieces == ["bach/bwv10.7"]
    assert summary.splits["test"].pieces == ["bach/bwv108.6"]


def test_split_of_is_stable_80_10_10() -> None:
    ids = [f"folder/piece{i}.mid" for i in range(20_000)]
    splits = [split_of(i) for i in ids]
    assert splits == [split_of(i) for i in ids]
    shares = {name: splits.count(name) / len(ids) for name in SPLITS}
    assert shares["train"] == pytest.approx(0.8, abs=0.02)
    assert shares["valid"] == pytest.approx(0.1, abs=0.02)
    assert shares["test"] == pytest.approx(0.1, abs=0.02)


def test_augmentation_only_on_train(bach) -> None:
    summary, out = bach
    assert summary.splits["train"].piece_sequences == [AUGMENTED] * 6
    assert summary.splits["valid"].piece_sequences == [1]
    assert summary.splits["test"].piece_sequences == [1]
    for name in SPLITS:
        _, offsets = load_split(out, name)
        assert len(offsets) - 1 == summary.splits[name].sequences


def test_augmented_sequences_are_transposed_and_stretched(bach) -> None:
    _, out = bach
    tokens, offsets = load_split(out, "train")
    first = [PERFORMANCE.decode(tokens[offsets[i] : offsets[i + 1]]) for i in range(AUGMENTED)]
    # Magenta's order: stretch 0.95, 1.0, 1.05, each transposed -3..+3.
    plain = first[7 + 3]
    assert np.array_equal(first[7 + 4]["pitch"], plain["pitch"] + 1)
    assert np.array_equal(first[7 + 0]["pitch"], plain["pitch"] - 3)
    assert first[3]["end"].max() == pytest.approx(0.95 * plain["end"].max(), abs=0.02)
    assert first[14 + 3]["end"].max() == pytest.approx(1.05 * plain["end"].max(), abs=0.02)


def test_offsets_match_tokens(bach) -> None:
    summary, out = bach
    for name in SPLITS:
        tokens, offsets = load_split(out, name)
        assert tokens.dtype == np.int16 and offsets.dtype == np.int64
        assert offsets[0] == 0 and offsets[-1] == len(tokens) == summary.splits[name].events
        assert np.all(np.diff(offsets) > 0)
        assert 0 <= tokens.min() and tokens.max() < PERFORMANCE.num_classes


def test_a_valid_sequence_decodes_to_the_piece(bach) -> None:
    _, out = bach
    tokens, offsets = load_split(out, "valid")
    decoded = PERFORMANCE.decode(tokens[offsets[0] : offsets[1]])
    (piece,) = [p for p in resolve_source("music21:bach") if p.id == "bach/bwv10.7"]
    original = load_notes(piece)
    assert len(decoded) == len(original) > 100
    assert np.array_equal(np.sort(decoded["pitch"]), np.sort(original["pitch"]))
    assert np.allclose(np.sort(decoded["start"]), np.sort(original["start"]), atol=0.0051)


def test_corpus_json_describes_the_files(bach) -> None:
    summary, out = bach
    meta = json.loads((out / "corpus.json").read_text())
    assert meta["source"] == "music21:bach"
    assert meta["representation"] == PERFORMANCE.to_dict()
    assert meta["limit"] == LIMIT and meta["augment"] is True
    assert meta["skipped"] == []
    assert meta["counts"]["pieces"] == LIMIT
    for name in SPLITS:
        assert meta["splits"][name]["pieces"] == summary.splits[name].pieces
        assert meta["splits"][name]["events"] == summary.splits[name].events
        # plain arrays: loadable with pickles refused
        np.load(out / f"{name}.tokens.npy", allow_pickle=False)


def test_bad_files_are_skipped_with_reasons(folder_corpus) -> None:
    summary, _ = folder_corpus
    reasons = {item["piece"]: item["reason"] for item in summary.skipped}
    assert set(reasons) == {"drums.midi", "empty.mid", "notes.mid", "truncated.mid"}
    assert "empty file" in reasons["empty.mid"]
    assert "no MThd" in reasons["notes.mid"]
    assert "truncated" in reasons["truncated.mid"]
    assert "no notes" in reasons["drums.midi"]
    assert summary.pieces == 4
    assert all(pid.startswith("chorales/") for s in summary.splits.values() for pid in s.pieces)


def test_output_does_not_depend_on_worker_count(folder_corpus, midi_folder, tmp_path) -> None:
    _, out = folder_corpus
    prepare_corpus(str(midi_folder), tmp_path, jobs=1, progress=False)
    for name in SPLITS:
        for kind in ("tokens", "offsets"):
            file = f"{name}.{kind}.npy"
            assert (tmp_path / file).read_bytes() == (out / file).read_bytes()


def test_cache_hit_returns_without_work(folder_corpus, midi_folder, capsys) -> None:
    first, out = folder_corpus
    stamp = (out / "train.tokens.npy").stat().st_mtime_ns
    again = prepare_corpus(str(midi_folder), out, jobs=2, progress=True)
    assert again.cached and not first.cached
    assert (out / "train.tokens.npy").stat().st_mtime_ns == stamp
    assert {n: s.to_dict() for n, s in again.splits.items()} == {
        n: s.to_dict() for n, s in first.splits.items()
    }
    printed = capsys.readouterr().out
    assert "already prepared" in printed and "skipped 4" in printed and "empty file" in printed


def test_cache_misses_on_other_options_or_force(midi_folder, tmp_path) -> None:
    prepare_corpus(str(midi_folder), tmp_path, jobs=2, progress=False)
    assert not prepare_corpus(str(midi_folder), tmp_path, augment=False, progress=False).cached
    assert not prepare_corpus(str(midi_folder), tmp_path, limit=3, progress=False).cached
    assert prepare_corpus(str(midi_folder), tmp_path, limit=3, progress=False).cached
    assert not prepare_corpus(
        str(midi_folder), tmp_path, limit=3, progress=False, force=True
    ).cached


def test_cache_misses_when_a_file_is_added(midi_folder, tmp_path) -> None:
    folder = tmp_path / "in"
    for path in sorted((midi_folder / "chorales").glob("*.mid"))[:2]:
        (folder / path.name).parent.mkdir(exist_ok=True)
        (folder / path.name).write_bytes(path.read_bytes())
    before = prepare_corpus(str(folder), tmp_path / "out", augment=False, progress=False)
    (folder / "extra.mid").write_bytes((folder / "chorale0.mid").read_bytes())
    after = prepare_corpus(str(folder), tmp_path / "out", augment=False, progress=False)
    assert not after.cached and after.pieces == before.pieces + 1


def test_only_bad_files_is_an_error(tmp_path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "empty.mid").write_bytes(b"")
    with pytest.raises(CadenzaError, match="no piece .* could be read.*empty file"):
        prepare_corpus(str(tmp_path / "in"), tmp_path / "out", progress=False)


def test_load_split_without_a_corpus(tmp_path, bach) -> None:
    with pytest.raises(CadenzaError, match="run `cadenza corpus prepare` first"):
        load_split(tmp_path / "nothing", "train")
    (tmp_path / "corpus.json").write_text("{}")  # a run that died half way
    with pytest.raises(CadenzaError, match="missing train.tokens.npy"):
        load_split(tmp_path, "train")
    with pytest.raises(CadenzaError, match="unknown split"):
        load_split(bach[1], "training")
