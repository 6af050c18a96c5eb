"""`corpus prepare --representation parts`: the chorales as a player's part over backing parts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from cadenza.corpus.parts import CHORD_LOW, bass_and_chords, choose_parts, encode_parts, read_parts
from cadenza.corpus.prepare import prepare_corpus
from cadenza.corpus.sources import resolve_source
from cadenza.corpus.token_files import load_split
from cadenza.parts import PartsCodec


def test_a_parts_corpus_records_its_representation_and_splits_by_piece(tiny_parts_corpus: Path):
    meta = json.loads((tiny_parts_corpus / "corpus.json").read_text())
    assert meta["representation"] == PartsCodec().to_dict()
    codec = PartsCodec.from_dict(meta["representation"])
    tokens, offsets = load_split(tiny_parts_corpus, "train")
    assert len(offsets) > 1 and tokens.max() < codec.vocab_size
    # Every sequence starts with a step and holds the player's and the backing's notes.
    for a, b in zip(offsets[:-1], offsets[1:], strict=True):
        sequence = np.asarray(tokens[a:b])
        assert codec.is_step(sequence[0])
        assert codec.is_backing(sequence).any()
        assert ((sequence >= codec.player_on_base) & (sequence < codec.off_base)).any()


def test_augmentation_transposes_all_parts_and_withholds_the_player_once():
    read = read_parts(resolve_source("music21:bach")[3])
    parts, bar_starts, bar_steps = read.parts, read.bar_starts, read.bar_steps
    whole = encode_parts(parts, bar_starts, bar_steps)
    sequences = encode_parts(parts, bar_starts, bar_steps, augment=True, withheld=2)
    codec = PartsCodec()
    per_shift = len(sequences) // 7
    assert len(sequences) == 7 * per_shift and per_shift > 1  # excerpts of each transposition
    with_player = [bool(((s >= codec.player_off_base) & (s < codec.off_base)).any())
                   for s in sequences[::per_shift]]
    assert with_player == [True, True, False, True, True, True, True]
    _, low = codec.decode(sequences[0])
    _, high = codec.decode(sequences[6 * per_shift])
    assert np.array_equal(low[2]["pitch"] + 6, high[2]["pitch"])  # -3 and +3
    assert max(len(s) for s in sequences) < len(whole[0])


def test_an_excerpt_starts_with_the_notes_sounding_at_its_start():
    read = read_parts(resolve_source("music21:bach")[3])
    codec = PartsCodec()
    start = int(read.bar_starts[4]) + 1  # just after a bar line: notes are held over it
    excerpt = codec.encode(read.parts[0], read.parts[1:4], read.bar_starts, read.bar_steps,
                           start, start + 64)
    first_frame = excerpt[1 : int(np.flatnonzero(codec.is_step(excerpt[1:]))[0]) + 1]
    sounding = {(k, int(n["pitch"])) for k, notes in enumerate(read.parts[1:4]) for n in notes
                if n["start"] < start < n["end"]}
    started = {codec.describe(t)[1:] for t in first_frame if codec.describe(t)[0] == "on"}
    assert sounding and sounding <= started


def test_a_piece_of_one_part_is_skipped_with_its_reason(tmp_path: Path, chorale_midi: Path):
    import mido

    folder = tmp_path / "songs"
    folder.mkdir()
    (folder / "four.mid").write_bytes(chorale_midi.read_bytes())
    solo = mido.MidiFile()
    track = mido.MidiTrack()
    track.extend([mido.Message("note_on", note=60, velocity=80, time=0),
                  mido.Message("note_off", note=60, velocity=0, time=480)])
    solo.tracks.append(track)
    solo.save(folder / "solo.mid")
    summary = prepare_corpus(str(folder), tmp_path / "out", jobs=1, progress=False,
                             representation="parts", augment=False)
    assert [s["piece"] for s in summary.skipped] == ["solo.mid"]
    assert "part" in summary.skipped[0]["reason"]


def test_a_chorale_re_voiced_as_bass_and_chords_keeps_its_harmony():
    read = read_parts(resolve_source("music21:bach")[5])
    voices = choose_parts(read.parts, 3)
    melody, bass, chords = bass_and_chords(voices, 4)
    assert melody is voices[0] and bass is voices[-1]
    assert chords["pitch"].min() >= CHORD_LOW and chords["pitch"].max() < CHORD_LOW + 12
    for beat in range(0, int(bass["end"].max()), 4):
        sounding = {int(n["pitch"]) % 12 for v in voices for n in v
                    if n["start"] <= beat < n["end"]}
        comped = {int(n["pitch"]) % 12 for n in chords if n["start"] <= beat < n["end"]}
        assert comped == (sounding if len(sounding) > 1 else set())
    # A pitch common to two beats' chords is held, not struck again.
    assert (chords["end"] - chords["start"]).max() > 4


def test_a_bass_and_chords_corpus_names_its_parts(tmp_path: Path):
    prepare_corpus("music21:bach", tmp_path, limit=6, augment=False, jobs=1, progress=False,
                   representation="parts", arrangement="bass-chords")
    meta = json.loads((tmp_path / "corpus.json").read_text())
    assert meta["representation"]["names"] == ["bass", "chords"]
    codec = PartsCodec.from_dict(meta["representation"])
    tokens, offsets = load_split(tmp_path, "train")
    _, (bass, chords) = codec.decode(np.asarray(tokens[offsets[0]:offsets[1]]))
    assert len(bass) and len(chords)
