"""The vae plugin running a real exported bundle in onnxruntime: the four modes, the live
Generator contract, and `cadenza generate --mode`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cadenza.cli import main
from cadenza.errors import BundleError, CadenzaError
from cadenza.events import PERFORMANCE
from cadenza.midi import load_notes
from cadenza.pianoroll import HOLD, ONSET, read_grid_midi
from cadenza.plugins import load_generator, plugin_classes
from cadenza.plugins.vae import MODES, SegmentVAE, slerp

PRIMERS = Path(__file__).parent.parent.parent / "cadenza" / "data" / "primers"


def chorale() -> object:
    return read_grid_midi((PRIMERS / "chorale.mid").read_bytes())


def test_registered_under_the_entry_point_group():
    assert plugin_classes()["vae"] is SegmentVAE


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_gives_whole_segments(tiny_vae_bundle, mode):
    generator = load_generator(tiny_vae_bundle, seed=1)
    a = generator.encode(generator.segments_of(chorale())[0])[0]
    rolls = generator.run_mode(mode, chorale(), segments=3, endpoints=(a, -a), steps=4)
    tiles = len(generator.segment_starts_of(chorale()))  # variation: one per primer segment
    assert len(rolls) == {"continue": 3, "sample": 3, "interpolate": 4, "variation": tiles}[mode]
    for roll in rolls:
        assert roll.shape == (generator.grid.segment_steps, 3, generator.grid.pitches)
        sounding = roll[:-1, ONSET] + roll[:-1, HOLD] > 0
        assert not np.any(roll[1:, HOLD] * ~sounding)  # a hold only continues a sounding pitch


def test_a_primer_is_tiled_by_segments_to_its_last_note(tiny_vae_bundle):
    generator = load_generator(tiny_vae_bundle)
    piece = read_grid_midi((PRIMERS / "folk.mid").read_bytes())  # 4.25 bars at half = 104
    starts = generator.segment_starts_of(piece)
    assert starts == [0, 32, 64]  # the last one runs past the end, in silence
    assert generator.last_segment_start(piece) == 48  # ends at the bar line after the tune


def test_variation_at_temperature_zero_is_the_reconstruction(tiny_vae_bundle):
    generator = load_generator(tiny_vae_bundle, seed=1)
    generator.knobs.temperature = 0.0
    rolls = generator.run_mode("variation", chorale())
    first = generator.segments_of(chorale())[0]
    assert np.array_equal(rolls[0], generator.decode(generator.encode(first)[0]))


def test_the_temperature_moves_a_variation_away_from_its_code(tiny_vae_bundle):
    generator = load_generator(tiny_vae_bundle, seed=1)
    mu, std = generator.encode(generator.segments_of(chorale())[0])
    distances = []
    for temperature in (0.0, 0.5, 2.0):
        generator.knobs.temperature = temperature
        distances.append(np.mean([np.linalg.norm(generator.vary(mu, std) - mu) for _ in range(20)]))
    assert distances[0] == 0.0 < distances[1] < distances[2]


def test_same_seed_same_continuation(tiny_vae_bundle):
    runs = [
        load_generator(tiny_vae_bundle, seed=5).run_mode("continue", chorale(), segments=2)
        for _ in range(2)
    ]
    assert all(np.array_equal(a, b) for a, b in zip(*runs, strict=True))


def test_interpolation_starts_and_ends_at_its_codes(tiny_vae_bundle):
    generator = load_generator(tiny_vae_bundle)
    generator.knobs.temperature = 0.0
    a = generator.style_code("bach")
    b = generator.encode(generator.segments_of(chorale())[0])[0]
    rolls = generator.run_mode("interpolate", endpoints=(a, b), steps=5)
    assert np.array_equal(rolls[0], generator.decode(a))
    assert np.array_equal(rolls[-1], generator.decode(b))


def test_slerp_keeps_to_the_sphere():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(16), rng.standard_normal(16)
    b *= np.linalg.norm(a) / np.linalg.norm(b)
    assert np.allclose(slerp(a, b, 0.0), a) and np.allclose(slerp(a, b, 1.0), b)
    for t in (0.25, 0.5, 0.75):
        assert np.linalg.norm(slerp(a, b, t)) == pytest.approx(np.linalg.norm(a))


def test_an_unknown_style_is_refused(tiny_vae_bundle):
    with pytest.raises(BundleError, match="no style 'jazz'"):
        load_generator(tiny_vae_bundle).style_code("jazz")


def test_interpolate_needs_two_steps(tiny_vae_bundle):
    generator = load_generator(tiny_vae_bundle)
    a = generator.style_code("bach")
    with pytest.raises(CadenzaError, match="at least 2"):
        generator.run_mode("interpolate", endpoints=(a, a), steps=1)


# --- the live Generator contract ------------------------------------------------------------
def answer(generator, bpm: float | None) -> tuple[np.ndarray, float, float]:
    """Prime with the chorale primer's first phrase and step through one answered segment:
    its notes, the call's first onset (the grid's origin) and where the events end (s)."""
    call = load_notes(PRIMERS / "chorale.mid")
    events = PERFORMANCE.encode(call[call["start"] < 3.0])
    generator.prime(events, {"bpm": bpm} if bpm else None)
    generated = [generator.step()]
    while generator.pending:
        generated.append(generator.step())
    everything = np.concatenate([events, generated])
    notes = PERFORMANCE.decode(everything)
    after_call = notes["start"] >= PERFORMANCE.seconds(events)
    return notes[after_call], float(notes["start"].min()), PERFORMANCE.seconds(everything)


@pytest.mark.parametrize("bpm", [120.0, 90.0])
def test_a_live_answer_is_one_segment_on_the_engines_grid(tiny_vae_bundle, bpm):
    generator = load_generator(tiny_vae_bundle, seed=2)
    generator.knobs.temperature = 1.0
    notes, origin, end = answer(generator, bpm)
    step = 60.0 / bpm / 4
    assert len(notes) > 0
    steps = (notes["start"] - origin) / step
    assert np.abs(steps - np.round(steps)).max() * step <= 0.005 + 1e-9  # the codec's 10 ms
    # The events run to the end of the segment, so that the next one starts on its bar line.
    bars = (end - origin) / (16 * step)
    assert abs(bars - round(bars)) * 16 * step <= 0.005 + 1e-9


def test_without_a_tempo_the_bundles_default_is_used(tiny_vae_bundle):
    generator = load_generator(tiny_vae_bundle)
    generator.prime([], None)
    assert generator.bpm == 120.0
    generator.prime([], {"bpm": 75})
    assert generator.bpm == 75.0


def test_a_snapshot_rewinds_the_answer(tiny_vae_bundle):
    generator = load_generator(tiny_vae_bundle, seed=4)
    generator.knobs.temperature = 1.0
    generator.prime(PERFORMANCE.encode(load_notes(PRIMERS / "folk.mid")))
    generator.generate(5)
    state = generator.snapshot()
    first = generator.generate(400).tolist()  # past the first segment's events
    generator.restore(state)
    assert generator.generate(400).tolist() == first


def test_an_empty_context_answers_from_the_prior(tiny_vae_bundle):
    generator = load_generator(tiny_vae_bundle, seed=1)
    generator.prime([])
    events = generator.generate(50)
    assert np.all((events >= 0) & (events < PERFORMANCE.num_classes))


# --- cadenza generate ------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
def test_generate_writes_each_mode(tiny_vae_bundle, tmp_path, mode, capsys):
    out = tmp_path / f"{mode}.mid"
    args = [
        "generate",
        "--bundle",
        str(tiny_vae_bundle),
        "--mode",
        mode,
        "--seconds",
        "8",
        "--temperature",
        "1",
        "--seed",
        "1",
        "-o",
        str(out),
    ]
    if mode == "interpolate":
        args += ["--between", str(PRIMERS / "chorale.mid"), "style:bach", "--steps", "3"]
    else:
        args += ["--primer", str(PRIMERS / "chorale.mid")]
    assert main(args) == 0
    assert out.stat().st_size > 0
    assert capsys.readouterr().out.startswith(str(out))


def test_generate_modes_need_the_vae(tiny_bundle, tmp_path, capsys):
    assert (
        main(
            [
                "generate",
                "--bundle",
                str(tiny_bundle),
                "--mode",
                "sample",
                "-o",
                str(tmp_path / "x.mid"),
            ]
        )
        == 2
    )
    assert "--mode: sample needs the vae plugin" in capsys.readouterr().err


def test_interpolating_from_a_missing_file_is_one_line(tiny_vae_bundle, tmp_path, capsys):
    assert (
        main(
            [
                "generate",
                "--bundle",
                str(tiny_vae_bundle),
                "--mode",
                "interpolate",
                "--between",
                str(tmp_path / "nope.mid"),
                "style:bach",
                "-o",
                str(tmp_path / "x.mid"),
            ]
        )
        == 2
    )
    assert "nope.mid: no such file" in capsys.readouterr().err
