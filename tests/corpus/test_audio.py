"""The audio corpus: real pieces through the real SoundFont (Debian's timgm6mb-soundfont)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cadenza.cli import main
from cadenza.corpus.audio import METADATA, load_clips, render_corpus
from cadenza.corpus.clips import (
    INSTRUMENTS,
    ClipPlan,
    RenderSettings,
    caption,
    plan_clip,
    register_label,
    render_clip,
    render_piece_clip,
    tempo_label,
)
from cadenza.corpus.common import SPLITS, gather_pieces, split_of
from cadenza.errors import CadenzaError
from cadenza.notes import make_notes
from cadenza.render import find_soundfont

SETTINGS = RenderSettings(sample_rate=16000, clip_seconds=2.0, clips_per_piece=2)


@pytest.fixture(scope="module")
def soundfont() -> str:
    pytest.importorskip("tinysoundfont")
    try:
        return str(find_soundfont())
    except CadenzaError as e:
        pytest.skip(str(e))


@pytest.fixture(scope="module")
def rendered(soundfont, tmp_path_factory) -> Path:
    """Eight chorales and four folk tunes: enough for pieces in more than one split."""
    out = tmp_path_factory.mktemp("audio")
    render_corpus(
        ["music21:bach", "music21:folk"],
        out,
        settings=SETTINGS,
        soundfont=soundfont,
        limit=None,
        max_pieces_per_source=6,
        jobs=2,
        progress=False,
    )
    return out


def test_clips_have_the_asked_length_and_rate(rendered):
    audio, clips, rate = load_clips(rendered, "train")
    assert rate == 16000
    assert audio.dtype == np.int16 and audio.shape == (len(clips), 32000)
    assert len(clips) > 0


def test_every_clip_is_heard(rendered):
    for split in SPLITS:
        audio, _, _ = load_clips(rendered, split)
        rms = np.sqrt(np.mean((audio.astype(np.float64) / 32767) ** 2, axis=1))
        assert (rms > 0.02).all(), rms  # normalised to -23 dBFS (0.07) unless the peak limits


def test_split_by_piece_as_corpus_prepare(rendered):
    seen: dict[str, str] = {}
    for split in SPLITS:
        for clip in load_clips(rendered, split)[1]:
            assert split_of(clip["piece"]) == split
            assert seen.setdefault(clip["piece"], split) == split
    assert len(set(seen.values())) >= 2  # the fixture has pieces in more than one split


def test_rows_follow_the_pieces_order_whatever_finished_first(rendered):
    order = [p.id for p in gather_pieces(["music21:bach", "music21:folk"], None, 6)[0]]
    for split in SPLITS:
        positions = [order.index(c["piece"]) for c in load_clips(rendered, split)[1]]
        assert positions == sorted(positions)


def test_captions_name_instrument_style_tempo_register(rendered):
    clips = [c for s in SPLITS for c in load_clips(rendered, s)[1]]
    assert {c["style"] for c in clips} == {"bach", "folk"}
    for clip in clips:
        article = "an" if clip["instrument"][0] in "aeiou" else "a"
        verb = "singing" if clip["instrument"] == "choir" else "playing"
        assert clip["caption"].startswith(f"{article} {clip['instrument']} {verb} ")
        assert clip["tempo"] == tempo_label(clip["onsets_per_second"])
        assert clip["register"] == register_label(clip["mean_pitch"])
        assert f"in a {clip['register']} register" in clip["caption"]


def test_second_run_is_cached(rendered, soundfont):
    before = (rendered / "train.audio.npy").stat().st_mtime_ns
    summary = render_corpus(
        ["music21:bach", "music21:folk"],
        rendered,
        settings=SETTINGS,
        soundfont=soundfont,
        max_pieces_per_source=6,
        jobs=2,
        progress=False,
    )
    assert summary.cached
    assert (rendered / "train.audio.npy").stat().st_mtime_ns == before


def test_other_settings_are_no_cache_hit(rendered, soundfont, tmp_path):
    out = tmp_path / "copy"
    out.mkdir()
    for path in rendered.iterdir():
        (out / path.name).write_bytes(path.read_bytes())
    summary = render_corpus(
        ["music21:bach"],
        out,
        settings=RenderSettings(16000, 1.0, 1),
        soundfont=soundfont,
        limit=1,
        max_pieces_per_source=None,
        jobs=1,
        progress=False,
    )
    assert not summary.cached
    assert all(np.load(out / f"{s}.audio.npy").shape[1] == 16000 for s in SPLITS)


def test_caption_reads_as_a_description():
    assert caption("church organ", "bach", "slow", "low") == (
        "a church organ playing a slow Bach chorale in a low register"
    )
    assert caption("acoustic guitar", "folk", "moderate", "high") == (
        "an acoustic guitar playing a moderately paced folk tune in a high register"
    )
    assert caption("piano", "chopin", "fast", "middle") == (
        "a piano playing a fast chopin piece in a middle register"
    )
    assert caption("choir", "palestrina", "slow", "middle") == (
        "a choir singing a slow Palestrina mass movement in a middle register"
    )


def _steady(pitch: int, per_second: float, seconds: float = 20.0) -> np.ndarray:
    starts = np.arange(0, seconds, 1 / per_second)
    return make_notes(starts, starts + 0.9 / per_second, pitch, 80)


@pytest.mark.parametrize(
    ("pitch", "per_second", "tempo", "register"),
    [(96, 8.0, "fast", "high"), (30, 1.0, "slow", "low")],
)
def test_tempo_and_register_measured_from_the_notes(soundfont, pitch, per_second, tempo, register):
    # Whatever speed (0.8-1.25) and octave each clip is given, these stay in their class.
    settings = RenderSettings(16000, 2.0, clips_per_piece=4)
    for i in range(settings.clips_per_piece):
        _, meta = render_piece_clip(
            "steady", i, _steady(pitch, per_second), "bach", settings, soundfont
        )
        assert (meta["tempo"], meta["register"]) == (tempo, register)


def test_clip_plan_is_stable_and_varied():
    assert plan_clip("bach/bwv1.6", 0) == plan_clip("bach/bwv1.6", 0)
    names = {plan_clip(f"piece{i}", 0).instrument for i in range(60)}
    assert len(names) >= len(INSTRUMENTS) - 2


def test_instrument_changes_the_sound(soundfont):
    notes = _steady(60, 2.0, 4.0)
    piano = render_clip(notes, 1.0, ClipPlan(0, 0, "piano", 1.0, 0), SETTINGS, soundfont)
    organ = render_clip(notes, 1.0, ClipPlan(0, 19, "church organ", 1.0, 0), SETTINGS, soundfont)
    spectra = [np.abs(np.fft.rfft(a)) for a in (piano, organ)]
    similarity = spectra[0] @ spectra[1] / np.linalg.norm(spectra[0]) / np.linalg.norm(spectra[1])
    assert similarity < 0.9


def test_a_bad_file_is_skipped_and_listed(soundfont, chorale_midi, tmp_path):
    folder = tmp_path / "midi"
    folder.mkdir()
    (folder / "good.mid").write_bytes(chorale_midi.read_bytes())
    (folder / "bad.mid").write_bytes(b"not a MIDI file")
    summary = render_corpus(
        [str(folder)],
        tmp_path / "out",
        settings=SETTINGS,
        soundfont=soundfont,
        jobs=1,
        progress=False,
    )
    assert [s["piece"] for s in summary.skipped] == ["bad.mid"]
    meta = json.loads((tmp_path / "out" / METADATA).read_text())
    assert meta["skipped"][0]["piece"] == "bad.mid"
    assert sum(len(c) for c in summary.clips.values()) == SETTINGS.clips_per_piece


def test_cli_refuses_a_bad_setting_in_one_line(capsys, tmp_path):
    code = main(["corpus", "render", "--clip-seconds", "0", "-o", str(tmp_path / "x")])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--clip-seconds" in err[0]
