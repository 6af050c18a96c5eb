"""Several sources in one corpus: a style label per sequence, the cap per source, and one
source (and corpora prepared before styles existed) left as they were."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest

from cadenza.cli import main
from cadenza.corpus.common import SPLITS, gather_pieces, split_of
from cadenza.corpus.prepare import CorpusSummary, prepare_corpus
from cadenza.corpus.sources import cap_pieces, resolve_source
from cadenza.corpus.token_files import load_split, load_styles
from cadenza.errors import CadenzaError

SOURCES = ["music21:bach", "music21:palestrina", "music21:folk"]
LIMIT = 3  # the first three pieces of each source
PRIMERS = Path(__file__).parents[2] / "cadenza" / "data" / "primers"


@pytest.fixture(scope="module")
def styled(tmp_path_factory) -> tuple[CorpusSummary, Path]:
    out = tmp_path_factory.mktemp("styled")
    summary = prepare_corpus(SOURCES, out, limit=LIMIT, jobs=2, progress=False)
    return summary, out


@pytest.fixture(scope="module")
def styled_folder(tmp_path_factory) -> Path:
    """maestro-like: a sub-folder per composer, and one file at the top."""
    folder = tmp_path_factory.mktemp("collection")
    (folder / "chorales").mkdir()
    (folder / "tunes" / "deeper").mkdir(parents=True)
    shutil.copy(PRIMERS / "chorale.mid", folder / "chorales" / "a.mid")
    shutil.copy(PRIMERS / "folk.mid", folder / "tunes" / "deeper" / "b.mid")
    shutil.copy(PRIMERS / "piano.mid", folder / "top.mid")
    return folder


def _piece_style_of_sequences(summary: CorpusSummary, split: str) -> list[str]:
    """The style each sequence should carry, from its piece's id (music21 ids start with the
    source's name for bach and palestrina, and with "folk/" for the folk collections)."""
    s = summary.splits[split]
    return [
        pid.split("/")[0]
        for pid, n in zip(s.pieces, s.piece_sequences, strict=True)
        for _ in range(n)
    ]


def test_each_sequence_carries_its_sources_style(styled) -> None:
    summary, out = styled
    assert summary.pieces == 3 * LIMIT
    for split in SPLITS:
        styles, names = load_styles(out, split)
        assert names == ["bach", "palestrina", "folk"]
        _, offsets = load_split(out, split)
        assert len(styles) == len(offsets) - 1
        assert [names[i] for i in styles] == _piece_style_of_sequences(summary, split)
    train, _ = load_styles(out, "train")
    assert set(train.tolist()) == {0, 1, 2}


def test_styles_on_disk_are_int16_and_named_in_corpus_json(styled) -> None:
    _, out = styled
    meta = json.loads((out / "corpus.json").read_text())
    assert meta["styles"] == ["bach", "palestrina", "folk"]
    assert meta["sources"] == SOURCES
    assert meta["source"] == " + ".join(SOURCES)
    for split in SPLITS:
        assert np.load(out / f"{split}.styles.npy", allow_pickle=False).dtype == np.int16


def test_split_is_the_pieces_own(styled) -> None:
    summary, _ = styled
    for split in SPLITS:
        assert all(split_of(pid) == split for pid in summary.splits[split].pieces)
    alone = {p.id for p in resolve_source("music21:folk")[:LIMIT]}
    together = {pid for s in summary.splits.values() for pid in s.pieces}
    assert alone <= together  # ids unchanged, so the split is the same as prepared alone


def test_summary_lists_pieces_and_events_per_style_and_split(styled) -> None:
    summary, _ = styled
    lines = summary.report().splitlines()
    (first,) = [i for i, line in enumerate(lines) if line.split()[:2] == ["palestrina", "train"]]
    for offset, split in enumerate(SPLITS):
        s = summary.splits[split]
        pieces = s.piece_styles.count(1)
        assert f"{pieces:>7,} pieces" in lines[first + offset]
        assert f"{s.style_events[1]:,} events" in lines[first + offset]
        assert sum(s.style_events) == s.events
    assert sum(s.piece_styles.count(1) for s in summary.splits.values()) == LIMIT


def test_folder_styles_are_first_sub_folders(styled_folder, tmp_path) -> None:
    summary = prepare_corpus(str(styled_folder), tmp_path, augment=False, progress=False)
    assert summary.styles == ["chorales", styled_folder.name, "tunes"]  # as first met
    by_piece = {}
    for split in SPLITS:
        styles, names = load_styles(tmp_path, split)
        by_piece.update(zip(summary.splits[split].pieces, (names[i] for i in styles), strict=True))
    assert by_piece == {
        "chorales/a.mid": "chorales",
        "tunes/deeper/b.mid": "tunes",
        "top.mid": styled_folder.name,
    }


def test_cap_is_deterministic_and_order_free() -> None:
    folk = resolve_source("music21:folk")
    capped = cap_pieces(folk, 40)
    assert len(capped) == 40
    assert capped == cap_pieces(folk, 40)
    shuffled = folk[:]
    random.Random(0).shuffle(shuffled)
    assert {p.id for p in cap_pieces(shuffled, 40)} == {p.id for p in capped}
    positions = [folk.index(p) for p in capped]
    assert positions == sorted(positions)  # kept in the source's order
    assert len({p.path.parent.name for p in capped}) == 3  # not just the first collection


def test_cap_applies_per_source(tmp_path) -> None:
    pieces, piece_styles, names = gather_pieces(SOURCES, limit=20, most=4)
    assert [piece_styles.count(i) for i in range(3)] == [4, 4, 4]
    bach = [p for p, s in zip(pieces, piece_styles, strict=True) if s == 0]
    assert bach == cap_pieces(resolve_source("music21:bach")[:20], 4)


def test_cap_is_part_of_the_cache_key(tmp_path) -> None:
    capped = prepare_corpus(
        "music21:bach", tmp_path, limit=6, max_pieces_per_source=2, augment=False, progress=False
    )
    assert capped.pieces == 2
    again = prepare_corpus("music21:bach", tmp_path, limit=6, augment=False, progress=False)
    assert not again.cached and again.pieces == 6


def test_one_source_keeps_its_key_and_one_style(tmp_path) -> None:
    summary = prepare_corpus("music21:bach", tmp_path, limit=2, augment=False, progress=False)
    meta = json.loads((tmp_path / "corpus.json").read_text())
    assert meta["source"] == "music21:bach"
    assert "sources" not in meta and "max_pieces_per_source" not in meta
    assert summary.styles == meta["styles"] == ["bach"]
    assert len(summary.report().splitlines()) == 1 + 3 + 1  # no per-style lines for one


def test_corpus_from_before_styles_still_loads_and_hits_the_cache(tmp_path) -> None:
    prepare_corpus("music21:bach", tmp_path, limit=2, augment=False, progress=False)
    meta = json.loads((tmp_path / "corpus.json").read_text())
    del meta["styles"]  # as an older cadenza wrote it
    for split in meta["splits"].values():
        del split["piece_styles"], split["style_events"]
    (tmp_path / "corpus.json").write_text(json.dumps(meta))
    for split in SPLITS:
        (tmp_path / f"{split}.styles.npy").unlink()
    again = prepare_corpus("music21:bach", tmp_path, limit=2, augment=False, progress=False)
    assert again.cached and again.styles == ["bach"]
    styles, names = load_styles(tmp_path, "train")
    _, offsets = load_split(tmp_path, "train")
    assert names == ["bach"]
    assert styles.dtype == np.int64 and np.array_equal(styles, np.zeros(len(offsets) - 1))


def test_styles_not_matching_the_sequences_is_an_error(tmp_path) -> None:
    prepare_corpus("music21:bach", tmp_path, limit=2, augment=False, progress=False)
    np.save(tmp_path / "train.styles.npy", np.zeros(99, np.int16))
    with pytest.raises(CadenzaError, match="styles do not match"):
        load_styles(tmp_path, "train")


@pytest.mark.parametrize(
    ("sources", "words"),
    [
        (["music21:bach", "music21:mozart"], ["music21:mozart", "music21:folk"]),
        (["music21:bach", "music21:bach"], ["bach/bwv1.6", "also in"]),
    ],
)
def test_bad_source_is_one_line(sources, words, tmp_path, capsys) -> None:
    code = main(["corpus", "prepare", *sources, "--limit", "1", "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert all(word in err for word in words)
    assert not (tmp_path / "out").exists()
