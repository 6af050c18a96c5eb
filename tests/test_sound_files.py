"""Sound files through libsndfile: what a DAW bounces is read, what Cadenza writes is what a
DAW expects. Files are written by soundfile itself, or checked with Python's own `wave`."""

from __future__ import annotations

import wave

import numpy as np
import pytest
import soundfile

from cadenza.errors import CadenzaError
from cadenza.sound_files import read_sound, write_sound


def sine(seconds: float, rate: int, hz: float = 330.0, level: float = 0.5) -> np.ndarray:
    return (level * np.sin(2 * np.pi * hz * np.arange(round(seconds * rate)) / rate)
            ).astype(np.float32)


@pytest.mark.parametrize("container, subtype, suffix, resolution", [
    ("WAV", "PCM_16", ".wav", 2.0 ** -15),
    ("WAV", "PCM_24", ".wav", 2.0 ** -23),
    ("WAV", "PCM_32", ".wav", 2.0 ** -31),
    ("WAV", "FLOAT", ".wav", 0.0),
    ("AIFF", "PCM_24", ".aiff", 2.0 ** -23),
    ("AIFF", "FLOAT", ".aif", 0.0),
    ("FLAC", "PCM_24", ".flac", 2.0 ** -23),
])
def test_reads_each_kind_of_file_a_daw_bounces(container, subtype, suffix, resolution,
                                               tmp_path):
    tone = sine(0.5, 48000)
    path = tmp_path / f"bounce{suffix}"
    soundfile.write(path, tone, 48000, subtype=subtype, format=container)
    samples, rate = read_sound(path)
    assert rate == 48000 and samples.dtype == np.float32 and samples.shape == tone.shape
    assert np.abs(samples - tone).max() <= resolution


def test_channels_are_averaged(tmp_path):
    left, right = sine(0.25, 24000, 330), sine(0.25, 24000, 440, 0.25)
    path = tmp_path / "stereo.wav"
    soundfile.write(path, np.stack([left, right], axis=1), 24000, subtype="PCM_24")
    samples, _ = read_sound(path)
    assert np.abs(samples - (left + right) / 2).max() < 1e-6


def test_a_file_longer_than_a_block_comes_back_whole(tmp_path):
    tone = sine(3.0, 48000)  # 144,000 frames: three blocks
    path = tmp_path / "long.wav"
    soundfile.write(path, tone, 48000, subtype="FLOAT")
    assert np.array_equal(read_sound(path)[0], tone)


@pytest.mark.parametrize("suffix, container", [(".wav", "WAV"), (".aiff", "AIFF"),
                                               (".AIF", "AIFF")])
@pytest.mark.parametrize("bit_depth, subtype", [("16", "PCM_16"), ("24", "PCM_24"),
                                                ("float", "FLOAT")])
def test_writes_the_asked_bit_depth_and_container(suffix, container, bit_depth, subtype,
                                                  tmp_path):
    path = write_sound(sine(0.1, 24000), tmp_path / f"out{suffix}", 24000, bit_depth)
    info = soundfile.info(path)
    assert (info.format, info.subtype, info.samplerate, info.frames) == (
        container, subtype, 24000, 2400)


def test_24_bits_keep_what_16_bits_lose(tmp_path):
    quiet = sine(0.1, 24000, level=1e-5)  # a third of a 16-bit step
    sixteen, _ = read_sound(write_sound(quiet, tmp_path / "16.wav", 24000, "16"))
    twenty_four, _ = read_sound(write_sound(quiet, tmp_path / "24.wav", 24000, "24"))
    assert not sixteen.any()
    assert np.abs(twenty_four - quiet).max() <= 2.0 ** -23  # rounded: half a 24-bit step


def test_integer_depths_clip_and_float_keeps_headroom(tmp_path):
    loud = np.array([0.0, 0.5, 1.5, -1.5, 1.0, -1.0], dtype=np.float32)
    for bit_depth in ("16", "24"):
        back, _ = read_sound(write_sound(loud, tmp_path / f"{bit_depth}.wav", 8000, bit_depth))
        assert back[2] == pytest.approx(1.0, abs=1e-4) and back[3] == pytest.approx(-1.0, abs=1e-4)
    back, _ = read_sound(write_sound(loud, tmp_path / "float.wav", 8000, "float"))
    assert back.tolist() == loud.tolist()


def test_16_bit_wav_as_pythons_wave_reads_it(tmp_path):
    samples = np.array([[0.0, 0.5], [1.5, -1.5], [1.0, -1.0]], dtype=np.float32)
    with wave.open(str(write_sound(samples, tmp_path / "clip.wav", 44100)), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (2, 2, 44100)
        pcm = np.frombuffer(wav.readframes(3), dtype="<i2").reshape(-1, 2)
    assert pcm.tolist() == [[0, 16384], [32767, -32767], [32767, -32767]]


def test_an_unknown_bit_depth_is_refused(tmp_path):
    with pytest.raises(CadenzaError, match="bit depth '32'"):
        write_sound(sine(0.1, 8000), tmp_path / "x.wav", 8000, "32")
    assert not (tmp_path / "x.wav").exists()


@pytest.mark.parametrize("container, subtype, suffix", [
    ("WAV", "PCM_24", ".wav"), ("WAV", "FLOAT", ".wav"), ("AIFF", "PCM_24", ".aiff")])
def test_a_file_cut_short_is_refused_naming_it(container, subtype, suffix, tmp_path):
    path = tmp_path / f"cut{suffix}"
    soundfile.write(path, sine(0.5, 24000), 24000, subtype=subtype, format=container)
    path.write_bytes(path.read_bytes()[:-5000])
    with pytest.raises(CadenzaError, match=f"{path}: cut short: its header promises"):
        read_sound(path)


def test_a_corrupt_or_missing_file_is_refused_naming_it(tmp_path):
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"RIFF\x00\x00\x00\x00WAVE" + b"garbage" * 20)
    with pytest.raises(CadenzaError, match=f"{junk}: not a readable sound file"):
        read_sound(junk)
    with pytest.raises(CadenzaError, match="nowhere.wav: no such file"):
        read_sound(tmp_path / "nowhere.wav")
