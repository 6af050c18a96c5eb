"""The `cadenza` command as a user runs it: real processes, exit codes, one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cadenza.midi import load_notes


def cadenza(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cadenza.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={**os.environ, "PYTHONWARNINGS": ""},
    )


def assert_one_line_usage_error(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for word in words:
        assert word in lines[0]


def test_generate_continues_a_primer(tiny_bundle, chorale_midi, tmp_path):
    out = tmp_path / "out.mid"
    result = cadenza(
        "generate",
        "--bundle",
        str(tiny_bundle),
        "--primer",
        str(chorale_midi),
        "--seconds",
        "4",
        "--seed",
        "1",
        "-o",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    primer, written = load_notes(chorale_midi), load_notes(out)
    assert len(written) >= len(primer)
    assert written["end"].max() >= primer["end"].max() + 3.5


def test_generate_with_the_transformer_and_a_style(tiny_transformer_bundle, chorale_midi, tmp_path):
    out = tmp_path / "out.mid"
    common = ["generate", "--bundle", str(tiny_transformer_bundle), "--primer", str(chorale_midi),
              "--seconds", "3", "--seed", "1", "-o", str(out)]
    result = cadenza(*common, "--style", "bach")
    assert result.returncode == 0, result.stderr
    assert load_notes(out)["end"].max() >= load_notes(chorale_midi)["end"].max() + 2.5
    assert_one_line_usage_error(cadenza(*common, "--style", "jazz"), "no style 'jazz'", "bach")


def test_generate_with_style_guidance(tiny_transformer_bundle, tiny_bundle, chorale_midi,
                                      tmp_path):
    out = tmp_path / "out.mid"
    common = ["generate", "--primer", str(chorale_midi), "--seconds", "3", "--seed", "1",
              "-o", str(out)]
    transformer = ["--bundle", str(tiny_transformer_bundle), "--style", "bach"]
    result = cadenza(*common, *transformer, "--style-guidance", "2")
    assert result.returncode == 0, result.stderr
    assert load_notes(out)["end"].max() >= load_notes(chorale_midi)["end"].max() + 2.5
    assert_one_line_usage_error(cadenza(*common, *transformer, "--style-guidance", "11"),
                                "--style-guidance")
    assert_one_line_usage_error(
        cadenza(*common, "--bundle", str(tiny_bundle), "--style-guidance", "2"),
        "performance-rnn plugin has no style guidance")


def test_generate_backs_a_melody_with_parts_on_their_channels(
    tiny_backing_bundle, chorale_midi, tmp_path
):
    import mido

    out = tmp_path / "backed.mid"
    common = ["generate", "--bundle", str(tiny_backing_bundle), "--seed", "1", "-o", str(out)]
    result = cadenza(*common, "--primer", str(chorale_midi), "--temperature", "1.5")
    assert result.returncode == 0, result.stderr
    ons = [m for track in mido.MidiFile(out).tracks for m in track
           if m.type == "note_on" and m.velocity]
    channels = {m.channel for m in ons}
    assert 0 in channels and channels - {0}, channels  # the melody, and backing under it
    assert channels <= {0, 1, 2, 3}
    assert_one_line_usage_error(cadenza(*common), "--primer", "melody")


def test_eval_of_a_backing_bundle_takes_its_harmony_knob(tiny_backing_bundle, tmp_path):
    result = cadenza("eval", str(tiny_backing_bundle), "--harmony", "9", "-o", str(tmp_path))
    assert_one_line_usage_error(result, "--harmony", "0..4")


def test_generate_without_a_primer_is_deterministic_with_a_seed(tiny_bundle, tmp_path):
    outs = [tmp_path / f"{i}.mid" for i in range(2)]
    for out in outs:
        assert (
            cadenza(
                "generate",
                "--bundle",
                str(tiny_bundle),
                "--seconds",
                "3",
                "--seed",
                "9",
                "-o",
                str(out),
            ).returncode
            == 0
        )
    assert outs[0].read_bytes() == outs[1].read_bytes()


@pytest.mark.parametrize(
    "content, problem",
    [
        (None, "no such file"),
        (b"", "empty file"),
        (b"plain text", "not a MIDI file"),
        (
            b"MThd\x00\x00\x00\x06\x00\x00\x00\x01\x01\xe0MTrk\x00\x00\x00\x40\x00\x90\x3c",
            "truncated",
        ),
    ],
)
def test_bad_primer_is_one_line_and_exit_2(tiny_bundle, tmp_path, content, problem):
    primer = tmp_path / "primer.mid"
    if content is not None:
        primer.write_bytes(content)
    result = cadenza(
        "generate",
        "--bundle",
        str(tiny_bundle),
        "--primer",
        str(primer),
        "-o",
        str(tmp_path / "o.mid"),
    )
    assert_one_line_usage_error(result, str(primer), problem)
    assert not (tmp_path / "o.mid").exists()


def test_bad_bundle_is_one_line_and_exit_2(tiny_bundle, tmp_path):
    result = cadenza("generate", "--bundle", str(tmp_path / "none"), "-o", str(tmp_path / "o.mid"))
    assert_one_line_usage_error(result, "no such bundle")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "manifest.yaml").write_text(
        (tiny_bundle / "manifest.yaml").read_text().replace("plugin: performance-rnn\n", "")
    )
    (broken / "step.onnx").write_bytes((tiny_bundle / "step.onnx").read_bytes())
    assert_one_line_usage_error(
        cadenza("generate", "--bundle", str(broken), "-o", "x.mid", cwd=tmp_path),
        "missing field 'plugin'",
    )


def test_bad_knob_and_bad_config_are_one_line(tiny_bundle, tmp_path):
    result = cadenza(
        "generate",
        "--bundle",
        str(tiny_bundle),
        "--temperature",
        "-1",
        "-o",
        str(tmp_path / "o.mid"),
    )
    assert_one_line_usage_error(result, "temperature")
    config = tmp_path / "bad.yaml"
    config.write_text("lr: fast\n")
    assert_one_line_usage_error(
        cadenza("train", "performance-rnn", "--config", str(config)), "lr", "expected float"
    )


def test_plugins_lists_the_plugin():
    result = cadenza("plugins")
    assert result.returncode == 0 and "performance-rnn" in result.stdout


def test_audio_writes_the_asked_seconds_to_a_wav(tiny_codec_lm_bundle, text_encoder, tmp_path):
    from cadenza.sound_files import read_sound

    out = tmp_path / "flute.wav"
    result = cadenza("audio", "--bundle", str(tiny_codec_lm_bundle), "--prompt", "a flute",
                     "--seconds", "1.5", "--seed", "1", "-o", str(out))
    assert result.returncode == 0, result.stderr
    samples, rate = read_sound(out)
    assert rate == 24000 and len(samples) == 36000
    assert abs(samples).max() > 0


def test_audio_continues_a_wav_after_it(tiny_codec_lm_bundle, text_encoder, tmp_path):
    import numpy as np

    from cadenza.sound_files import read_sound, write_sound

    prompt = tmp_path / "prompt.wav"  # at 48 kHz: resampled to the codec's 24 kHz
    t = np.arange(48000) / 48000
    write_sound((0.3 * np.sin(2 * np.pi * 330 * t)).astype(np.float32), prompt, 48000)
    out = tmp_path / "more.wav"
    result = cadenza("audio", "--bundle", str(tiny_codec_lm_bundle), "--prompt", "organ",
                     "--continue", str(prompt), "--seconds", "0.8", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert "continuing 1.00 s" in result.stdout
    assert len(read_sound(out)[0]) == round(0.8 * 24000)


def test_generate_renders_a_24_bit_aiff(tiny_bundle, chorale_midi, tmp_path):
    pytest.importorskip("tinysoundfont")
    import numpy as np
    import soundfile

    from cadenza.errors import CadenzaError
    from cadenza.render import find_soundfont

    try:
        find_soundfont()
    except CadenzaError as e:
        pytest.skip(str(e))
    wav = tmp_path / "out.aiff"
    result = cadenza("generate", "--bundle", str(tiny_bundle), "--primer", str(chorale_midi),
                     "--seconds", "1", "--seed", "1", "-o", str(tmp_path / "out.mid"),
                     "--wav", str(wav), "--bit-depth", "24")
    assert result.returncode == 0, result.stderr
    info = soundfile.info(wav)
    assert (info.format, info.subtype, info.channels, info.samplerate) == (
        "AIFF", "PCM_24", 2, 44100)
    assert np.abs(soundfile.read(wav)[0]).max() > 1e-3  # the primer's notes, heard


@pytest.mark.parametrize("container, subtype, suffix, rate, channels, bit_depth, written", [
    ("WAV", "PCM_24", ".wav", 48000, 2, "24", "PCM_24"),  # a DAW's usual stereo bounce
    ("WAV", "FLOAT", ".wav", 44100, 1, "float", "FLOAT"),
    ("AIFF", "PCM_24", ".aiff", 24000, 2, None, "PCM_16"),  # Logic's; 16-bit out by default
    ("AIFF", "PCM_16", ".aif", 24000, 1, "24", "PCM_24"),  # written as AIFF, by its name
])
def test_audio_continues_a_daw_bounce(container, subtype, suffix, rate, channels, bit_depth,
                                      written, tiny_codec_lm_bundle, text_encoder, tmp_path):
    import numpy as np
    import soundfile

    t = np.arange(round(1.2 * rate)) / rate
    tone = 0.3 * np.sin(2 * np.pi * 330 * t)
    prompt = tmp_path / f"bounce{suffix}"
    soundfile.write(prompt, np.stack([tone] * channels, axis=1), rate, subtype=subtype,
                    format=container)
    out = tmp_path / f"more{'.aif' if suffix == '.aif' else '.wav'}"
    result = cadenza("audio", "--bundle", str(tiny_codec_lm_bundle), "--prompt", "organ",
                     "--continue", str(prompt), "--seconds", "0.8", "-o", str(out),
                     *(["--bit-depth", bit_depth] if bit_depth else []))
    assert result.returncode == 0, result.stderr
    assert "continuing 1.20 s" in result.stdout  # all of it, resampled to 24 kHz
    info = soundfile.info(out)
    assert (info.format, info.subtype) == ("AIFF" if suffix == ".aif" else "WAV", written)
    assert (info.samplerate, info.channels, info.frames) == (24000, 1, round(0.8 * 24000))
    assert np.abs(soundfile.read(out)[0]).max() > 0


@pytest.mark.parametrize("damage, words", [
    (lambda raw: raw[: len(raw) // 2], "cut short"),
    (lambda raw: raw[:30], "not a readable sound file"),
    (lambda raw: b"RIFF" + bytes(40) + raw[44:], "not a readable sound file"),
])
def test_audio_refuses_a_damaged_file_in_one_line(damage, words, tiny_codec_lm_bundle,
                                                  tmp_path):
    import numpy as np
    import soundfile

    take = tmp_path / "take.wav"
    soundfile.write(take, np.zeros(24000, np.float32), 24000, subtype="PCM_24")
    take.write_bytes(damage(take.read_bytes()))
    out = tmp_path / "more.wav"
    result = cadenza("audio", "--bundle", str(tiny_codec_lm_bundle), "--continue", str(take),
                     "--seconds", "0.5", "-o", str(out))
    assert_one_line_usage_error(result, str(take), words)
    assert not out.exists()


def test_bit_depth_without_a_file_is_a_usage_error(tiny_codec_lm_bundle):
    result = cadenza("audio", "--bundle", str(tiny_codec_lm_bundle), "--bit-depth", "24",
                     "--seconds", "1")
    assert_one_line_usage_error(result, "--bit-depth")
    assert_one_line_usage_error(cadenza("audio", "--bit-depth", "32", "-o", "x.wav"),
                                "--bit-depth", "invalid choice")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--seconds", "-2"], ["--seconds", "positive"]),
        (["--cfg", "-1"], ["--cfg"]),
        (["--temperature", "20"], ["--temperature"]),
        (["--continue", "missing.wav"], ["missing.wav", "no such file"]),
    ],
)
def test_audio_bad_settings_are_one_line(tiny_codec_lm_bundle, tmp_path, args, words):
    result = cadenza("audio", "--bundle", str(tiny_codec_lm_bundle), *args,
                     "-o", str(tmp_path / "o.wav"), cwd=tmp_path)
    assert_one_line_usage_error(result, *words)
    assert not (tmp_path / "o.wav").exists()


def test_audio_refuses_a_bundle_of_another_plugin(tiny_bundle, tmp_path):
    result = cadenza("audio", "--bundle", str(tiny_bundle), "-o", str(tmp_path / "o.wav"))
    assert_one_line_usage_error(result, "codec-lm")


def most_at_once(notes) -> int:
    """The most notes sounding at once (a note ending where another starts is not with it)."""
    edges = sorted([(t, -1) for t in notes["end"]] + [(t, +1) for t in notes["start"]])
    counts = [0]
    for _, change in edges:
        counts.append(counts[-1] + change)
    return max(counts)


@pytest.mark.parametrize("plugin, flags, voices", [
    ("performance-rnn", ["--mono"], 1),
    ("transformer", ["--max-voices", "2"], 2),
])
def test_generate_keeps_to_the_voices_asked_for(plugin, flags, voices, tmp_path):
    from cadenza.demo import PRIMERS

    primer = PRIMERS / "chorale.mid"
    out = tmp_path / "out.mid"
    result = cadenza("generate", "--plugin", plugin, "--primer", str(primer), "--seconds", "8",
                     "--seed", "1", *flags, "-o", str(out))
    assert result.returncode == 0, result.stderr
    primer_end = float(load_notes(primer)["end"].max())
    notes = load_notes(out)
    generated = notes[notes["start"] >= primer_end - 1e-3]
    assert len(generated) > 4
    assert most_at_once(generated) <= voices
    assert most_at_once(notes[notes["start"] < primer_end - 1e-3]) > voices  # the primer's chords


def test_generate_starts_from_the_bundles_sampling_defaults(tmp_path):
    """No knob flag: the shipped LSTM's own defaults (temperature 0.9, top_p 0.9), the same
    take as asking for them; asking for others is another take."""
    def take(*flags: str) -> bytes:
        out = tmp_path / f"{len(list(tmp_path.iterdir()))}.mid"
        result = cadenza("generate", "--plugin", "performance-rnn", "--seconds", "4",
                         "--seed", "3", *flags, "-o", str(out))
        assert result.returncode == 0, result.stderr
        return out.read_bytes()

    default = take()
    assert default == take("--temperature", "0.9", "--top-p", "0.9")
    assert default != take("--temperature", "1.0", "--top-p", "1.0")
