"""Rendering through a real SoundFont (Debian's timgm6mb-soundfont) and real matplotlib."""

from __future__ import annotations

import struct
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from cadenza.errors import CadenzaError
from cadenza.midi import load_notes
from cadenza.notes import make_notes
from cadenza.render import (
    find_soundfont,
    plot_piano_roll,
    render_audio,
    render_wav,
    soundfont_places,
)

PRIMERS = Path(__file__).resolve().parents[1] / "cadenza" / "data" / "primers"
ORGAN = 19  # GM church organ: sustains until released, so a stuck note would be heard


@pytest.fixture(scope="module")
def soundfont() -> Path:
    pytest.importorskip("tinysoundfont")
    try:
        return find_soundfont()
    except CadenzaError as e:
        pytest.skip(str(e))


@pytest.fixture(autouse=True)
def no_soundfont_env(monkeypatch):
    monkeypatch.delenv("CADENZA_SOUNDFONT", raising=False)


def read_wav(path: Path) -> tuple[tuple, np.ndarray]:
    with wave.open(str(path), "rb") as wav:
        params = wav.getparams()
        frames = np.frombuffer(wav.readframes(params.nframes), dtype="<i2")
    return params, frames.reshape(-1, params.nchannels)


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) if samples.size else 0.0


@pytest.mark.parametrize("name", ["chorale", "folk", "piano"])
def test_primer_loads(name):
    notes = load_notes(PRIMERS / f"{name}.mid")
    assert len(notes) > 10
    assert 4.0 <= notes["end"].max() <= 8.0
    assert notes["start"].min() == 0.0


def test_piano_primer_has_pedal():
    held = load_notes(PRIMERS / "piano.mid")
    dry = load_notes(PRIMERS / "piano.mid", sustain=False)
    assert (held["end"] - held["start"]).sum() > 1.5 * (dry["end"] - dry["start"]).sum()


@pytest.mark.parametrize("sample_rate", [44100, 22050])
def test_render_primer(tmp_path, soundfont, sample_rate):
    notes = load_notes(PRIMERS / "chorale.mid")
    notes["start"] += 0.5  # half a second of silence before the first note
    notes["end"] += 0.5
    path = render_wav(notes, tmp_path / "out.wav", sample_rate=sample_rate, tail_seconds=1.0)

    assert path.read_bytes()[:4] == b"RIFF" and path.read_bytes()[8:12] == b"WAVE"
    params, audio = read_wav(path)
    assert (params.nchannels, params.sampwidth, params.framerate) == (2, 2, sample_rate)
    expected = (notes["end"].max() + 1.0) * sample_rate
    assert abs(params.nframes - expected) <= 2
    assert not audio[: int(0.5 * sample_rate) - 1].any()
    assert rms(audio) > 300  # well above silence (16-bit full scale is 32767)
    assert audio[:, 0].std() > 0 and audio[:, 1].std() > 0


def test_render_audio_is_float_stereo_silent_until_the_first_note(soundfont):
    audio = render_audio(make_notes([0.5], [1.0], [60], [100]), sample_rate=22050)
    assert audio.dtype == np.float32 and audio.shape == (round(2.0 * 22050), 2)
    assert not audio[: int(0.5 * 22050) - 1].any()
    assert np.abs(audio[int(0.5 * 22050) : int(0.9 * 22050)]).max() > 0.01


def test_repeated_and_overlapping_notes_all_end(tmp_path, soundfont):
    # One key struck again as it ends, and a unison where the second note starts before
    # the first ends: every note must be released, so the organ falls silent in the tail.
    notes = make_notes(
        start=[0.0, 0.4, 0.8, 1.0], end=[0.4, 0.8, 1.2, 1.6], pitch=60, velocity=100
    )
    path = render_wav(notes, tmp_path / "organ.wav", program=ORGAN, tail_seconds=1.5)
    _, audio = read_wav(path)
    assert rms(audio[int(0.1 * 44100) : int(1.5 * 44100)]) > 300
    assert rms(audio[-int(0.3 * 44100) :]) < 1


def test_render_no_notes_is_the_tail_in_silence(tmp_path, soundfont):
    notes = make_notes(start=[], end=[], pitch=[], velocity=[])
    params, audio = read_wav(render_wav(notes, tmp_path / "empty.wav", tail_seconds=0.25))
    assert params.nframes == round(0.25 * 44100)
    assert not audio.any()


def test_missing_soundfont_names_the_path(tmp_path):
    missing = tmp_path / "nowhere" / "piano.sf2"
    with pytest.raises(CadenzaError, match="nowhere/piano.sf2"):
        find_soundfont(missing)
    notes = make_notes(start=[0.0], end=[0.5], pitch=60, velocity=80)
    with pytest.raises(CadenzaError, match="nowhere/piano.sf2"):
        render_wav(notes, tmp_path / "out.wav", soundfont=missing)
    assert not (tmp_path / "out.wav").exists()


def test_soundfont_from_environment(tmp_path, monkeypatch, soundfont):
    monkeypatch.setenv("CADENZA_SOUNDFONT", str(soundfont))
    assert find_soundfont() == soundfont
    monkeypatch.setenv("CADENZA_SOUNDFONT", str(tmp_path / "typo.sf2"))
    with pytest.raises(CadenzaError, match="CADENZA_SOUNDFONT.*typo.sf2"):
        find_soundfont()


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_piano_roll_png(tmp_path):
    pytest.importorskip("matplotlib")
    primer = load_notes(PRIMERS / "piano.mid")
    split = float(primer["end"].max())
    continuation = primer.copy()
    continuation["start"] += split
    continuation["end"] += split
    notes = np.concatenate([primer, continuation])
    path = plot_piano_roll(notes, tmp_path / "roll" / "piano.png", split_at=split, title="K. 545")
    width, height = png_size(path)
    assert 800 <= width <= 2000 and 300 <= height <= 1200 and width > height
    assert path.stat().st_size > 10_000


def test_piano_roll_of_nothing(tmp_path):
    pytest.importorskip("matplotlib")
    notes = make_notes(start=[], end=[], pitch=[], velocity=[])
    assert png_size(plot_piano_roll(notes, tmp_path / "empty.png")) > (0, 0)


# ----- where the SoundFont is found, as on each platform -----


@pytest.fixture
def bare_machine(monkeypatch, tmp_path):
    """A home folder with nothing in it, and no pretty_midi: nothing to find unless a test
    puts it there."""
    home = tmp_path / "home"
    home.mkdir()
    for var in ("HOME", "USERPROFILE"):
        monkeypatch.setenv(var, str(home))
    for var in ("APPDATA", "LOCALAPPDATA", "ProgramData", "XDG_DATA_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setitem(sys.modules, "pretty_midi", None)
    return home


def sf2(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"RIFF")
    return path


def test_soundfont_on_windows(monkeypatch, tmp_path, bare_machine):
    monkeypatch.setattr(sys, "platform", "win32")
    with pytest.raises(CadenzaError) as info:
        find_soundfont()
    message = str(info.value)
    assert "\n" not in message
    for said in ("SoundFonts", "--soundfont", "CADENZA_SOUNDFONT", "%USERPROFILE%"):
        assert said in message
    sf2(bare_machine / "SoundFonts" / "gm.dls")  # Windows' own GM bank is DLS: not for us
    with pytest.raises(CadenzaError):
        find_soundfont()
    monkeypatch.setenv("APPDATA", str(tmp_path / "AppData" / "Roaming"))
    found = sf2(tmp_path / "AppData" / "Roaming" / "cadenza" / "soundfonts" / "Arachno.sf2")
    assert find_soundfont() == found
    profile = sf2(bare_machine / "SoundFonts" / "GeneralUser.sf2")
    assert find_soundfont() == profile  # %USERPROFILE%\SoundFonts comes first
    assert find_soundfont(found) == found  # --soundfont wins


def test_soundfont_on_macos(monkeypatch, bare_machine):
    monkeypatch.setattr(sys, "platform", "darwin")
    with pytest.raises(CadenzaError, match="Library/Audio/Sounds/Banks.*brew install"):
        find_soundfont()
    banks = bare_machine / "Library" / "Audio" / "Sounds" / "Banks"
    sf2(banks / "Arachno.sf2")
    gm = sf2(banks / "FluidR3_GM.sf2")
    assert find_soundfont() == gm  # a General MIDI bank by name before the others


def test_soundfont_places_per_platform(bare_machine):
    def names(platform: str) -> str:
        return " ".join(str(p) for p in soundfont_places(platform, {"HOME": "/h"}))

    assert "/usr/share/sounds/sf2/TimGM6mb.sf2" in names("linux")
    assert "/Library/Audio/Sounds/Banks" in names("darwin")
    assert "/opt/homebrew/share" in names("darwin")
    assert "/usr/share/sounds" not in names("win32")
    assert all("cadenza/data/soundfonts" in names(p) for p in ("linux", "darwin", "win32"))


def test_pretty_midis_soundfont_anywhere(monkeypatch, tmp_path, bare_machine):
    monkeypatch.setattr(sys, "platform", "win32")
    package = tmp_path / "site" / "pretty_midi"
    (package).mkdir(parents=True)
    (package / "__init__.py").write_text("")
    bundled = sf2(package / "TimGM6mb.sf2")
    monkeypatch.delitem(sys.modules, "pretty_midi")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    assert find_soundfont() == bundled
    assert "pretty_midi" not in sys.modules  # found, not imported
