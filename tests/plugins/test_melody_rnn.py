"""The melody-rnn plugin running a tiny trained bundle: a lead line on the bar grid."""

from __future__ import annotations

import numpy as np
import pytest

from cadenza.events import PERFORMANCE
from cadenza.generate import continue_primer
from cadenza.melody import binary_counter
from cadenza.midi import load_notes
from cadenza.plugins import load_generator, plugin_classes
from cadenza.plugins.melody_rnn import MelodyRNN

PRIMERS = "cadenza/data/primers"


def answer(generator: MelodyRNN, steps: int) -> np.ndarray:
    events = generator.generate(steps * 4)
    notes = PERFORMANCE.decode(np.asarray(events))
    return notes


def test_registered_as_a_plugin():
    assert plugin_classes()["melody-rnn"] is MelodyRNN


@pytest.mark.parametrize("primer", ["piano.mid", "chorale.mid", "folk.mid"])
def test_a_primer_of_chords_is_answered_with_one_line(tiny_melody_bundle, primer):
    generator = load_generator(tiny_melody_bundle, seed=1)
    result = continue_primer(generator, load_notes(f"{PRIMERS}/{primer}"), 12.0)
    generated = result.notes[result.notes["start"] >= result.primer_seconds - 1e-9]
    assert len(generated) > 8
    assert np.all(generated["end"][:-1] <= generated["start"][1:] + 1e-9)  # monophonic


def test_notes_fall_on_the_16th_grid_of_the_tempo(tiny_melody_bundle):
    generator = load_generator(tiny_melody_bundle, seed=2)
    generator.prime(PERFORMANCE.encode(load_notes(f"{PRIMERS}/folk.mid")), {"bpm": 90.0})
    notes = answer(generator, 64)
    step = 60.0 / 90.0 / 4
    for edge in (notes["start"], notes["end"]):
        off = edge / step - np.round(edge / step)
        assert np.all(np.abs(off * step) <= 0.0051)  # within the 10 ms of a time shift


@pytest.mark.parametrize("bar_step", [0, 4, 13])
def test_bar_step_puts_the_answer_on_the_engines_bar(tiny_melody_bundle, bar_step):
    generator = load_generator(tiny_melody_bundle, seed=3)
    generator.prime(PERFORMANCE.encode(load_notes(f"{PRIMERS}/folk.mid")),
                    {"bpm": 120.0, "bar_step": bar_step})
    generator.step()
    line = generator.line
    primer_steps = len(line.classes) - 1
    assert (line.first_position + primer_steps) % 16 == bar_step
    # The input that predicted the answer's first step counted the answer's own position.
    counter = generator.encoding.inputs(line.classes[:primer_steps], "lookback",
                                        line.first_position)[-1][3 * 38 : 3 * 38 + 5]
    expected = binary_counter(np.array([line.first_position + primer_steps]))[0]
    assert counter.tolist() == expected.tolist()


def test_without_bar_step_the_first_note_is_a_downbeat(tiny_melody_bundle):
    generator = load_generator(tiny_melody_bundle, seed=3)
    generator.prime(PERFORMANCE.encode(load_notes(f"{PRIMERS}/folk.mid")), {"bpm": 120.0})
    generator.step()
    line = generator.line
    first_note = next(i for i, c in enumerate(line.classes) if c >= 2)
    assert (line.first_position + first_note) % 16 == 0


def test_same_seed_same_answer_and_snapshots_rewind(tiny_melody_bundle):
    runs = []
    for _ in range(2):
        generator = load_generator(tiny_melody_bundle, seed=5)
        generator.prime(PERFORMANCE.encode(load_notes(f"{PRIMERS}/piano.mid")), {"bpm": 100})
        head = generator.generate(10).tolist()
        snapshot = generator.snapshot()
        tail = generator.generate(40).tolist()
        generator.restore(snapshot)
        assert generator.generate(40).tolist() == tail
        runs.append(head + tail)
    assert runs[0] == runs[1]


def test_an_empty_primer_still_answers(tiny_melody_bundle):
    generator = load_generator(tiny_melody_bundle, seed=0)
    generator.prime(np.zeros(0, np.int64))
    notes = answer(generator, 128)
    assert len(notes) > 0
    assert notes["pitch"].min() >= 48 and notes["pitch"].max() < 84  # no primer: no shift


def test_generate_answers_on_the_primers_tempo_and_bars(tiny_melody_bundle, tmp_path):
    """`cadenza generate --bundle` with a real file at 180 bpm (music21's test MIDI): the
    answer is one line on its 16th grid, from the bar line after the primer."""
    from pathlib import Path

    import music21

    from cadenza.cli import main

    primer = Path(music21.__file__).parent / "midi" / "testPrimitive" / "test07.mid"
    out = tmp_path / "answer.mid"
    main(["generate", "--bundle", str(tiny_melody_bundle), "--primer", str(primer), "--bars",
          "2", "--seed", "4", "-o", str(out)])
    notes = load_notes(out)
    primer_end = float(load_notes(primer)["end"].max())
    bar = 4 * 60.0 / 180.0
    origin = np.ceil(primer_end / bar - 1e-9) * bar
    answer = notes[notes["start"] >= origin - 1e-6]
    assert len(answer) > 4
    assert np.all(answer["end"][:-1] <= answer["start"][1:] + 1e-6)
    steps = (answer["start"] - origin) / (bar / 16)
    assert np.abs(steps - np.round(steps)).max() * bar / 16 <= 0.0051
