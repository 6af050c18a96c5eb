"""Codec training on a tiny corpus of tones in the rendered corpus' format: a few steps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from cadenza.corpus.audio import METADATA
from cadenza.errors import ConfigError
from cadenza.training.codec import CodecConfig
from cadenza.training.codec_train import (
    codec_from_checkpoint,
    load_codec_config,
    main,
    train,
)

RATE = 24000


def write_tone_corpus(out: Path, clips: dict[str, int], seconds: float = 0.5) -> Path:
    """Chords of three random pitches with a little noise, as `corpus render` lays them out."""
    rng = np.random.default_rng(0)
    t = np.arange(int(RATE * seconds)) / RATE
    meta = {"sample_rate": RATE, "clip_seconds": seconds, "splits": {}}
    for split, count in clips.items():
        rows = []
        for _ in range(count):
            freqs = 220 * 2 ** (rng.integers(0, 24, 3) / 12)
            x = sum(np.sin(2 * np.pi * f * t) for f in freqs) / 6 + rng.normal(0, 0.01, len(t))
            rows.append(np.round(x * 32767).astype(np.int16))
        np.save(out / f"{split}.audio.npy", np.stack(rows), allow_pickle=False)
        meta["splits"][split] = [{"caption": "chord"} for _ in rows]
    (out / METADATA).write_text(json.dumps(meta))
    return out


def tiny_config(data: Path, out: Path, *extra: str):
    config = load_codec_config(
        None,
        [
            f"data={data}",
            f"out={out}",
            "batch_size=4",
            "crop_seconds=0.2",
            "max_steps=4",
            "eval_every=2",
            "eval_clips=4",
            "threads=1",
            *extra,
        ],
    )
    config.model = CodecConfig(latent_dim=8, codebook_size=16, frame_channels=16,
                               frame_blocks=1)
    return config


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return write_tone_corpus(tmp_path_factory.mktemp("tones"), {"train": 8, "valid": 4, "test": 2})


@pytest.fixture(scope="module")
def run(corpus, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("codec-run")
    return out, train(tiny_config(corpus, out), progress=False)


def test_training_reports_held_out_codec_and_baseline_figures(run):
    out, returned = run
    figures = returned["test"]  # the best checkpoint on every test clip
    assert figures == torch.load(out / "best.pt", weights_only=True)["test"]
    for key in ("mel_distance", "si_sdr", "baseline_mel_distance", "baseline_si_sdr"):
        assert np.isfinite(figures[key]), key
    assert figures["bits_per_second"] == 4 * 4 * 50.0  # 4 codebooks of 16 codes at 50 Hz
    assert len(figures["codes_used"]) == 4 and 0 < min(figures["codes_used"]) <= 1


def test_checkpoints_load_with_weights_only_and_decode(run):
    out, _ = run
    checkpoint = torch.load(out / "best.pt", weights_only=True)
    codec = codec_from_checkpoint(checkpoint)
    codes = codec.encode(torch.zeros(1, 1, 4800))
    assert codes.shape == (1, 4, 10)
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [2, 4]


def test_resume_goes_on_from_the_last_step(corpus, run, tmp_path):
    out, _ = run
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    (resumed / "last.pt").write_bytes((out / "last.pt").read_bytes())
    figures = train(tiny_config(corpus, resumed, "max_steps=6"), resume=True, progress=False)
    assert figures["step"] == 6
    assert torch.load(resumed / "last.pt", weights_only=True)["step"] == 6


def test_a_corpus_at_another_rate_is_one_clear_error(corpus, tmp_path, capsys):
    code = main(
        [
            "--data",
            str(corpus),
            "--out",
            str(tmp_path),
            "--set",
            "model.sample_rate=16000",
            "--no-progress",
        ]
    )
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "model.sample_rate" in err[0]


def test_an_unknown_setting_is_refused():
    with pytest.raises(ConfigError, match="model.chanels"):
        load_codec_config(None, ["model.chanels=8"])


def test_an_unknown_architecture_is_one_line_naming_the_field():
    with pytest.raises(ConfigError, match="model.architecture.*'wavenet' is not one of seanet"):
        load_codec_config(None, ["model.architecture=wavenet"])
