"""Offline rendering: a real SoundFont through tinysoundfont, a piano roll through matplotlib."""

from __future__ import annotations

import wave

import numpy as np
import pytest

from cadenza.demo import PRIMERS
from cadenza.errors import CadenzaError
from cadenza.midi import load_notes
from cadenza.notes import make_notes
from cadenza.render import plot_piano_roll, render_audio, render_wav


def test_a_primer_renders_to_a_stereo_wav_of_the_right_length(tmp_path):
    notes = load_notes(PRIMERS / "chorale.mid")
    path = render_wav(notes, tmp_path / "chorale.wav", tail_seconds=1.0)
    with wave.open(str(path)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (2, 2, 44100)
        seconds = wav.getnframes() / wav.getframerate()
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
    assert seconds == pytest.approx(notes["end"].max() + 1.0, abs=0.01)
    assert np.sqrt(np.mean(pcm.astype(float) ** 2)) > 100  # it is music, not silence


def test_silence_until_the_first_note_and_sound_after():
    audio = render_audio(make_notes([0.5], [1.0], [60], [100]), sample_rate=22050)
    assert np.abs(audio[: int(0.49 * 22050)]).max() == 0
    assert np.abs(audio[int(0.5 * 22050) : int(0.9 * 22050)]).max() > 0.01


def test_piano_roll_is_a_png(tmp_path):
    notes = load_notes(PRIMERS / "chorale.mid")
    path = plot_piano_roll(notes, tmp_path / "roll.png", split_at=2.0, title="test")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width >= 600 and height >= 300


def test_a_missing_soundfont_is_named(tmp_path):
    with pytest.raises(CadenzaError, match="nothing.sf2: no such SoundFont"):
        render_audio(make_notes([0], [1], [60], [90]), soundfont=tmp_path / "nothing.sf2")


@pytest.mark.parametrize("name", ["chorale.mid", "folk.mid", "piano.mid"])
def test_bundled_primers_are_real_phrases(name):
    notes = load_notes(PRIMERS / name)
    assert len(notes) >= 8 and 3.0 <= notes["end"].max() <= 10.0
