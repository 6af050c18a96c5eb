"""The Python API (cadenza.api): the README's "From Python" block, run as it stands, and what
each call gives back."""

from __future__ import annotations

import re
from pathlib import Path

import mido
import numpy as np
import pytest

import cadenza
from cadenza.errors import CadenzaError

ROOT = Path(__file__).resolve().parents[1]
CHORALE = ROOT / "cadenza" / "data" / "primers" / "chorale.mid"


def readme_python_blocks() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## From Python", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_the_readme_from_python_block_runs(tmp_path, monkeypatch, text_encoder):
    blocks = readme_python_blocks()
    assert blocks, "README.md has a From Python section with a python block"
    monkeypatch.chdir(tmp_path)
    for name in ("cadenza",):  # the block reads the bundled primers from a checkout
        (tmp_path / name).symlink_to(ROOT / name)
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)
    for written in ("answer.mid", "bach-to-folk.mid", "backed.mid"):
        assert mido.MidiFile(tmp_path / written).length > 0
    samples, rate = namespace["samples"], namespace["rate"]
    assert samples.dtype == np.float32 and len(samples) == 2 * rate
    assert len(namespace["more"]) == rate


def test_continuing_gives_the_primer_then_the_asked_bars():
    model = cadenza.load("performance-rnn", seed=4)
    music = model.continue_(CHORALE, bars=2, bpm=90)
    assert music.bpm == 90 and music.primer_seconds > 0
    assert music.seconds >= music.primer_seconds
    assert music.notes["start"].max() <= music.primer_seconds + 2 * 4 * 60 / 90 + 0.01


def test_the_same_seed_gives_the_same_music():
    first = cadenza.load("transformer").continue_(CHORALE, seconds=2, seed=7)
    again = cadenza.load("transformer").continue_(CHORALE, seconds=2, seed=7)
    assert np.array_equal(first.notes, again.notes)


def test_a_note_array_is_a_primer_as_good_as_its_file():
    from cadenza.midi import load_notes

    from_file = cadenza.load("performance-rnn").continue_(CHORALE, seconds=1, seed=2)
    from_notes = cadenza.load("performance-rnn").continue_(load_notes(CHORALE), seconds=1,
                                                           seed=2)
    assert np.array_equal(from_file.notes, from_notes.notes)


def test_a_monophonic_continuation_sounds_one_note_at_a_time():
    music = cadenza.load("performance-rnn").continue_(CHORALE, seconds=6, seed=3, max_voices=1)
    answer = music.notes[music.notes["start"] >= music.primer_seconds - 1e-6]
    answer = answer[np.argsort(answer["start"], kind="stable")]
    assert len(answer) > 3
    assert (answer["start"][1:] >= answer["end"][:-1] - 1e-6).all()  # each ends before the next


@pytest.mark.parametrize("call, words", [
    (lambda m: m.continue_(CHORALE), "seconds= or bars="),
    (lambda m: m.generate(seconds=1, max_voices=-2), "max_voices"),
    (lambda m: m.continue_(CHORALE, seconds=1, bars=1), "seconds= or bars="),
    (lambda m: m.continue_(CHORALE, seconds=-1), "positive"),
    (lambda m: m.generate(seconds=1, temperature=-1), "temperature"),
    (lambda m: m.interpolate("a.mid", "b.mid"), "latent"),
    (lambda m: m.generate_audio("a flute"), "use continue_"),
])
def test_a_wrong_call_is_one_line(call, words):
    with pytest.raises(CadenzaError, match=re.escape(words)):
        call(cadenza.load("performance-rnn"))


def test_an_unknown_name_says_what_it_looked_for():
    with pytest.raises(CadenzaError, match="no-such-model"):
        cadenza.load("no-such-model")
