"""Regenerate the bundled primers in cadenza/data/primers/ from music21's corpus.

    .venv/bin/python scripts/make_primers.py

Each primer is the opening phrase of a corpus piece: music21 translates the score to MIDI,
cadenza.midi reads it back and trims it to the phrase, write_midi saves it. The output
depends only on the installed music21 corpus, so a rerun gives the same bytes.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import mido
import numpy as np
from music21 import corpus
from music21.midi import translate

from cadenza.midi import (
    SUSTAIN_CC,
    load_notes,
    notes_to_midi,
    parse_midi_bytes,
    performed_notes,
    write_midi,
)

OUT = Path(__file__).resolve().parent.parent / "cadenza" / "data" / "primers"


@dataclass(frozen=True)
class Primer:
    name: str
    work: str  # music21 corpus path
    number: int | None  # the tune's number in a multi-tune .abc file
    quarters: float  # keep this many quarter notes from the start: a phrase boundary
    strong: int  # velocity on the strongest beat; weaker beats are softer
    weak: int
    pedal_every: float = 0.0  # quarters between sustain-pedal changes, 0 for no pedal
    accompaniment: int = 0  # velocity subtracted from every part but the first


PRIMERS = (
    # Bach, "Christ unser Herr zum Jordan kam" BWV 66.6: the pickup and two phrases, to the
    # second fermata (four voices, 5.0 s at the corpus's crotchet = 96).
    Primer("chorale", "bach/bwv66.6", None, quarters=8, strong=84, weak=64),
    # "Soldier's Joy", a fiddle tune from Aird's Airs: the pickup and four bars (4.9 s).
    Primer("folk", "airdsAirs/book1.abc", 109, quarters=17, strong=92, weak=66),
    # Mozart, piano sonata K. 545, first movement: the opening four-bar phrase, a melody
    # over an Alberti bass, pedalled every half bar as a pianist might (7.3 s).
    Primer(
        "piano", "mozart/k545/movement1_exposition", None, quarters=16, strong=80, weak=66,
        pedal_every=2, accompaniment=16,
    ),
)


def score(primer: Primer):
    """The parsed score with velocities set from metre: music21 writes a flat 90 otherwise."""
    work = corpus.parse(primer.work, number=primer.number)
    for i, part in enumerate(work.parts):
        for note in part.recurse().notes:
            velocity = primer.weak + (primer.strong - primer.weak) * note.beatStrength
            note.volume.velocity = int(round(velocity)) - (primer.accompaniment if i else 0)
    return work


def quarter_seconds(work) -> float:
    """Seconds per quarter note at the score's first tempo mark (music21's 120 if none)."""
    marks = work.metronomeMarkBoundaries()
    bpm = marks[0][2].getQuarterBPM() if marks else 120.0
    return 60.0 / bpm


def trim(notes: np.ndarray, seconds: float) -> np.ndarray:
    """Notes that start before `seconds`, cut off there. The tolerance absorbs MIDI's
    whole-microsecond tempo (crotchet = 132 is 454545 us), which moves a bar line by a few us."""
    notes = notes[notes["start"] < seconds - 0.005].copy()
    notes["end"] = np.minimum(notes["end"], seconds)
    return notes


def with_pedal(mid: mido.MidiFile, every: float, length: float) -> mido.MidiFile:
    """Add legato pedalling on channel 0: the pedal is lifted as each new harmony arrives
    and pressed again just after, so one harmony rings on and the next does not blur it."""
    track = mid.tracks[0]
    ticks_per_second = mid.ticks_per_beat * 1e6 / next(
        m.tempo for m in track if m.type == "set_tempo"
    )
    timed, tick = [], 0
    for msg in track:
        tick += msg.time
        if msg.type != "end_of_track":
            timed.append((tick, 1, msg))
    changes = np.arange(0.0, length, every)
    for t in changes:
        timed.append((round((t + 0.05) * ticks_per_second), 0, _pedal(127)))
        timed.append((round(max(t + every - 0.02, 0) * ticks_per_second), 0, _pedal(0)))
    timed.sort(key=lambda e: (e[0], e[1]))
    out = mido.MidiTrack()
    last = 0
    for tick, _, msg in timed:
        out.append(msg.copy(time=tick - last))
        last = tick
    out.append(mido.MetaMessage("end_of_track", time=0))
    mid.tracks[0] = out
    return mid


def _pedal(value: int) -> mido.Message:
    return mido.Message("control_change", channel=0, control=SUSTAIN_CC, value=value)


def make(primer: Primer, out_dir: Path) -> Path:
    work = score(primer)
    seconds_per_quarter = quarter_seconds(work)
    data = translate.streamToMidiFile(work).writestr()
    # sustain=False: the corpus has no pedal; the piano primer's pedal is added below,
    # into the file, so that loading it exercises the pedal as a real performance would.
    notes = performed_notes(parse_midi_bytes(data, primer.work), sustain=False)
    length = primer.quarters * seconds_per_quarter
    notes = trim(notes, length)
    path = out_dir / f"{primer.name}.mid"
    if not primer.pedal_every:
        return write_midi(notes, path, program=0, channel=0)
    mid = notes_to_midi(notes, program=0, channel=0)
    with_pedal(mid, primer.pedal_every * seconds_per_quarter, length).save(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help="output folder (%(default)s)")
    args = parser.parse_args()
    for primer in PRIMERS:
        path = make(primer, args.out)
        notes = load_notes(path)
        if len(notes) == 0:
            raise SystemExit(f"{path}: no notes")
        print(f"{path}: {len(notes)} notes, {notes['end'].max():.2f} s, "
              f"pitches {notes['pitch'].min()}-{notes['pitch'].max()}, "
              f"velocities {notes['velocity'].min()}-{notes['velocity'].max()}")


if __name__ == "__main__":
    main()
