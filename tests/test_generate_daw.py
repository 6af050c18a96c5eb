"""`cadenza generate` for a DAW: the primer's tempo, time signature and bar grid carried into
a type-1 file, lengths in bars, variations, a program per part, quantisation. Real primers
(one written here at 90 bpm in 3/4, and music21's files written by others), the tiny trained
bundles, the files read back with mido."""

from __future__ import annotations

from pathlib import Path

import mido
import music21
import numpy as np
import pytest

from cadenza.cli import main

MUSIC21 = Path(music21.__file__).parent
TPB = 480  # the ticks per beat Cadenza writes


@pytest.fixture(scope="module")
def waltz(tmp_path_factory) -> Path:
    """A primer at 90 bpm in 3/4: four bars of quarter notes, a type-1 file (tempo and time
    signature in a track of their own)."""
    mid = mido.MidiFile(type=1, ticks_per_beat=96)
    conductor = mido.MidiTrack([
        mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(90)),
        mido.MetaMessage("time_signature", numerator=3, denominator=4),
    ])
    melody = mido.MidiTrack()
    for k, pitch in enumerate([60, 64, 67, 72, 67, 64, 62, 65, 69, 67, 64, 60]):
        melody.append(mido.Message("note_on", note=pitch, velocity=80, time=6 if k else 0))
        melody.append(mido.Message("note_off", note=pitch, velocity=0, time=90))  # legato
    mid.tracks += [conductor, melody]
    path = tmp_path_factory.mktemp("primer") / "waltz.mid"
    mid.save(path)
    return path


def generate(*args: str, capsys) -> tuple[int, str, str]:
    try:
        code = main(["generate", *args])
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return code or 0, out.out, out.err


def notes_by_track(path: Path) -> dict[str, list[tuple[int, int, int]]]:
    """(on tick, off tick, pitch) of each track's notes, by track name."""
    out = {}
    for track in mido.MidiFile(path).tracks[1:]:
        tick, open_at, notes = 0, {}, []
        for message in track:
            tick += message.time
            if message.type == "note_on" and message.velocity:
                open_at[message.note] = tick
            elif message.type in ("note_on", "note_off") and message.note in open_at:
                notes.append((open_at.pop(message.note), tick, message.note))
        out[track.name] = sorted(notes)
    return out


def meter_of(path: Path) -> tuple[float, tuple[int, int], int]:
    """(bpm, time signature, ticks every track lasts) of a type-1 file Cadenza wrote."""
    mid = mido.MidiFile(path)
    assert mid.type == 1 and mid.ticks_per_beat == TPB
    tempo = next(m for m in mid.tracks[0] if m.type == "set_tempo")
    signature = next(m for m in mid.tracks[0] if m.type == "time_signature")
    lengths = {sum(m.time for m in track) for track in mid.tracks}
    assert len(lengths) == 1, lengths  # every track ends on the same tick
    return (mido.tempo2bpm(tempo.tempo), (signature.numerator, signature.denominator),
            lengths.pop())


@pytest.mark.parametrize("unit, step", [("16th", TPB // 4), ("beat", TPB)])
def test_a_waltz_primer_gives_a_waltz_on_its_grid(unit, step, tiny_bundle, waltz, tmp_path,
                                                  capsys):
    out = tmp_path / "answer.mid"
    code, said, err = generate("--bundle", str(tiny_bundle), "--primer", str(waltz),
                               "--bars", "4", "--quantize", unit, "--seed", "2",
                               "-o", str(out), capsys=capsys)
    assert code == 0, err
    assert "90 bpm 3/4, 4 bars of primer + 4 bars" in said
    bpm, signature, length = meter_of(out)
    assert bpm == pytest.approx(90.0, abs=1e-3) and signature == (3, 4)
    bar = 3 * TPB
    assert length == 8 * bar  # the primer's 4 bars, then 4
    tracks = notes_by_track(out)
    assert list(tracks) == ["primer", "answer"]
    assert tracks["primer"][0] == (0, 450, 60) and len(tracks["primer"]) == 12  # as played
    answer = tracks["answer"]
    assert answer, "the model played nothing"
    ticks = np.array([(on, off) for on, off, _ in answer])
    assert np.all(ticks % step == 0)  # starts and ends on the grid
    assert np.all(ticks[:, 1] - ticks[:, 0] >= step)  # a note keeps one unit at least
    assert ticks[:, 0].min() >= 4 * bar  # from the bar line after the primer on
    assert ticks[:, 1].max() <= 8 * bar


def test_variations_are_different_and_the_same_as_files_or_tracks(tiny_bundle, waltz, tmp_path,
                                                                  capsys):
    common = ["--bundle", str(tiny_bundle), "--primer", str(waltz), "--bars", "2",
              "--seed", "11", "--variations", "4"]
    code, said, err = generate(*common, "-o", str(tmp_path / "take.mid"), capsys=capsys)
    assert code == 0, err
    files = [tmp_path / f"take-{k}.mid" for k in range(1, 5)]
    assert all(f.is_file() for f in files) and not (tmp_path / "take.mid").exists()
    answers = [notes_by_track(f)["answer"] for f in files]
    assert all(answers)
    assert len({tuple(a) for a in answers}) == 4  # four different results
    code, said, err = generate(*common, "--variations-as", "tracks",
                               "-o", str(tmp_path / "all.mid"), capsys=capsys)
    assert code == 0, err
    tracks = notes_by_track(tmp_path / "all.mid")
    assert list(tracks) == ["primer", "answer 1", "answer 2", "answer 3", "answer 4"]
    assert [tracks[f"answer {k}"] for k in range(1, 5)] == answers  # same seeds, same takes
    channels = [next(m.channel for m in t if m.type == "program_change")
                for t in mido.MidiFile(tmp_path / "all.mid").tracks[1:]]
    assert len(set(channels)) == 5


def test_eight_bars_are_eight_bars(tiny_bundle, tmp_path, capsys):
    out = tmp_path / "eight.mid"
    code, said, err = generate("--bundle", str(tiny_bundle), "--bars", "8", "--bpm", "100",
                               "--seed", "5", "-o", str(out), capsys=capsys)
    assert code == 0, err
    bpm, signature, length = meter_of(out)
    assert bpm == pytest.approx(100.0, abs=1e-3) and signature == (4, 4)
    assert length == 8 * 4 * TPB  # the file spans 8 bars
    answer = notes_by_track(out)["answer"]
    assert answer and max(off for _, off, _ in answer) <= length  # ends by the end of bar 8
    assert mido.MidiFile(out).length == pytest.approx(8 * 4 * 0.6, abs=1e-3)


@pytest.mark.parametrize(("name", "bpm", "signature"), [
    ("midi/testPrimitive/test07.mid", 180.0, (4, 4)),  # type 0
    ("midi/testPrimitive/test17.mid", 120.0, (3, 4)),  # type 1
    ("omr/k525short.mid", 100.0, (4, 4)),  # type 1, Mozart; two tempos at tick 0
])
def test_primers_written_by_others_give_their_tempo_and_meter(name, bpm, signature, tiny_bundle,
                                                              tmp_path, capsys):
    out = tmp_path / "answer.mid"
    code, said, err = generate("--bundle", str(tiny_bundle), "--primer", str(MUSIC21 / name),
                               "--bars", "2", "--seed", "1", "-o", str(out), capsys=capsys)
    assert code == 0, err
    got_bpm, got_signature, length = meter_of(out)
    assert got_bpm == pytest.approx(bpm, abs=0.01) and got_signature == signature
    bar = signature[0] * TPB * 4 // signature[1]
    assert length % bar == 0
    primer_end = max(off for _, off, _ in notes_by_track(out)["primer"])
    assert length - 2 * bar >= primer_end - 2  # the answer's 2 bars begin after the primer


def test_backing_parts_are_named_tracks_with_their_programs(tiny_backing_bundle, waltz,
                                                            tmp_path, capsys):
    out = tmp_path / "backed.mid"
    code, said, err = generate("--bundle", str(tiny_backing_bundle), "--primer", str(waltz),
                               "--seed", "1", "--program", "bass=33", "--program", "alto=41",
                               "-o", str(out), capsys=capsys)
    assert code == 0, err
    bpm, signature, length = meter_of(out)
    assert bpm == pytest.approx(90.0, abs=1e-3) and signature == (3, 4)
    assert length == 4 * 3 * TPB  # the melody's four bars
    mid = mido.MidiFile(out)
    names = [t.name for t in mid.tracks[1:]]
    assert names == ["player", "alto", "tenor", "bass"]
    programs = {t.name: next(m for m in t if m.type == "program_change") for t in mid.tracks[1:]}
    assert {n: m.program for n, m in programs.items()} == {
        "player": 0, "alto": 41, "tenor": 48, "bass": 33}  # tenor: the bundle's own
    assert len({m.channel for m in programs.values()}) == 4
    for track in mid.tracks[1:]:
        channel = programs[track.name].channel
        assert {m.channel for m in track if m.type == "note_on"} <= {channel}
    assert notes_by_track(out)["player"][0] == (0, TPB, 60)  # on the grid, as backing reads it


def test_the_vae_continues_on_the_primers_grid(tiny_vae_bundle, waltz, tmp_path, capsys):
    out = tmp_path / "vae.mid"
    code, said, err = generate("--bundle", str(tiny_vae_bundle), "--primer", str(waltz),
                               "--bars", "2", "--seed", "3", "-o", str(out), capsys=capsys)
    assert code == 0, err
    bpm, signature, length = meter_of(out)
    assert bpm == pytest.approx(90.0, abs=1e-3) and signature == (3, 4)
    assert length == 6 * 3 * TPB  # four bars of primer, two of the vae's
    for _, track in notes_by_track(out).items():
        assert all(on % (TPB // 4) == 0 for on, _, _ in track)  # the vae writes 16ths


@pytest.mark.parametrize(("args", "words"), [
    (["--bpm", "100"], "--bpm"),  # with the primer: its tempo is the one
    (["--program", "drums=3"], "no part 'drums' here (parts: primer, answer)"),
    (["--variations", "15", "--variations-as", "tracks"], "--variations-as files"),
])
def test_what_cannot_be_done_is_one_line(args, words, tiny_bundle, waltz, tmp_path, capsys):
    out = tmp_path / "x.mid"
    code, said, err = generate("--bundle", str(tiny_bundle), "--primer", str(waltz),
                               "--seconds", "1", *args, "-o", str(out), capsys=capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and words in err, err
    assert not list(tmp_path.iterdir())


def test_wav_renders_each_variation_with_its_programs(tiny_bundle, waltz, tmp_path, capsys):
    pytest.importorskip("tinysoundfont")
    from cadenza.errors import CadenzaError
    from cadenza.render import find_soundfont
    from cadenza.sound_files import read_sound

    try:
        find_soundfont()
    except CadenzaError as e:
        pytest.skip(str(e))
    code, said, err = generate("--bundle", str(tiny_bundle), "--primer", str(waltz),
                               "--bars", "1", "--variations", "2", "--program", "answer=40",
                               "--seed", "1", "-o", str(tmp_path / "v.mid"),
                               "--wav", str(tmp_path / "v.wav"), capsys=capsys)
    assert code == 0, err
    for k in (1, 2):
        samples, rate = read_sound(tmp_path / f"v-{k}.wav")
        assert len(samples) >= 10 * rate  # 5 bars at 90 bpm in 3/4, and the tail
        assert np.abs(samples).max() > 0.01
