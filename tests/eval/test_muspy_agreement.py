"""The eval's polyphony and groove consistency are MusPy's: the `muspy` package (a dev
dependency) reads each real MIDI file its own way, and both figures agree to 1e-6.

MusPy counts time in ticks of the file, Cadenza in seconds; on a file with one tempo the
two are the same grid (beat_seconds = the tempo's quarter note, `resolution` = the file's
ticks a quarter), and at MusPy's default 24 steps a beat after muspy's adjust_resolution.
The files are music21's own MIDI test files (written by others), the bundled primers and
chorales of the embedded corpus through music21's MIDI writer."""

from __future__ import annotations

import math
from pathlib import Path

import mido
import pytest

from cadenza.eval import metrics
from cadenza.midi import load_notes

muspy = pytest.importorskip("muspy")
music21 = pytest.importorskip("music21")

MUSIC21_MIDI = Path(music21.__file__).parent / "midi" / "testPrimitive"
PRIMERS = Path(__file__).resolve().parents[2] / "cadenza" / "data" / "primers"
# The test files with one tempo throughout (the others change tempo, which MusPy's ticks
# ignore and Cadenza's seconds do not); among them type 0 and 1, 3/4, 6/8, 4/4, pedal.
ONE_TEMPO = ["test01", "test02", "test05", "test06", "test07", "test08", "test12", "test13",
             "test14", "test15", "test16", "test18"]
FILES = [MUSIC21_MIDI / f"{name}.mid" for name in ONE_TEMPO] + [
    PRIMERS / f"{name}.mid" for name in ("chorale", "folk", "piano")]


@pytest.fixture(scope="module")
def chorales(tmp_path_factory) -> list[Path]:
    """Five Bach chorales of the embedded corpus, as `cadenza corpus prepare` writes them."""
    from cadenza.corpus.sources import music21_midi_bytes, resolve_source

    folder = tmp_path_factory.mktemp("chorales")
    paths = []
    for k, source in enumerate(resolve_source("music21:bach")[:5]):
        path = folder / f"chorale{k}.mid"
        path.write_bytes(music21_midi_bytes(source))
        paths.append(path)
    return paths


def beat_seconds_of(path: Path) -> float:
    """The one tempo's quarter note in seconds (MIDI's default, 120 bpm, if none is set)."""
    tempos = {m.tempo for track in mido.MidiFile(path).tracks for m in track
              if m.type == "set_tempo"}
    assert len(tempos) <= 1, f"{path.name} changes tempo"
    return (tempos.pop() if tempos else 500_000) / 1e6


def same(ours: float, theirs: float) -> bool:
    return (math.isnan(ours) and math.isnan(theirs)) or abs(ours - theirs) <= 1e-6


def check_file(path: Path) -> None:
    beat = beat_seconds_of(path)
    # The notes as written: MusPy applies no sustain pedal and keeps the drums' onsets.
    notes = load_notes(path, sustain=False, drums=True)
    music = muspy.read_midi(path)
    ticks = music.resolution
    assert len(notes) > 0
    assert same(metrics.polyphony(notes, beat, ticks), muspy.polyphony(music)), path.name
    for beats_per_bar in (3, 4):
        ours = metrics.groove_consistency(notes, beat, beats_per_bar, ticks)
        assert same(ours, muspy.groove_consistency(music, ticks * beats_per_bar)), path.name
    # What the eval reports: MusPy's 24 steps a beat, and the 16th grid of its own name.
    for resolution in (metrics.MUSPY_RESOLUTION, metrics.SIXTEENTHS):
        coarse = muspy.read_midi(path).adjust_resolution(resolution)
        ours = metrics.polyphony(notes, beat, resolution)
        assert same(ours, muspy.polyphony(coarse)), (path.name, resolution)
        ours = metrics.groove_consistency(notes, beat, 4, resolution)
        assert same(ours, muspy.groove_consistency(coarse, resolution * 4)), (path.name,
                                                                               resolution)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_agrees_with_muspy_on_real_files(path):
    check_file(path)


def test_agrees_with_muspy_on_corpus_chorales(chorales):
    for path in chorales:
        check_file(path)


def test_the_eval_figures_are_muspys_at_120_bpm():
    # figures() as `cadenza eval` calls it: the bundled chorale primer (no tempo set, so
    # MIDI's 120 bpm), 24 steps a beat.
    path = PRIMERS / "chorale.mid"
    assert beat_seconds_of(path) == metrics.DEFAULT_BEAT_SECONDS
    music = muspy.read_midi(path).adjust_resolution(metrics.MUSPY_RESOLUTION)
    values = metrics.figures(load_notes(path, sustain=False, drums=True))
    assert same(values["polyphony"], muspy.polyphony(music))
    assert same(values["groove_consistency"], muspy.groove_consistency(music, 96))
    assert same(values["pitch_class_entropy"], muspy.pitch_class_entropy(music))
    assert same(values["scale_consistency"], muspy.scale_consistency(music))
    assert same(values["pitch_range"], muspy.pitch_range(music))
