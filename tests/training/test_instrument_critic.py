"""Training and exporting the instrument critic, on a tiny real rendered audio corpus."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from cadenza.bundle import load_bundle
from cadenza.corpus.audio import INSTRUMENTS, METADATA, RenderSettings, load_clips, render_corpus
from cadenza.errors import CadenzaError
from cadenza.eval.audio import MelSettings, load_instrument_critic, log_mel
from cadenza.render import find_soundfont
from cadenza.training.instrument_critic import (
    Augment,
    ClipMels,
    InstrumentCriticConfig,
    export_instrument_critic,
    load_instrument_critic_config,
    train_instrument_critic,
)

TINY = InstrumentCriticConfig(crop_seconds=0.5, channels=(4, 8), embed_dim=8, batch_size=4,
                              steps=6, eval_every=3)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """Eight chorales and eight folk tunes, two 1-s clips each: every split has clips."""
    pytest.importorskip("tinysoundfont")
    try:
        soundfont = find_soundfont()
    except CadenzaError as e:
        pytest.skip(str(e))
    out = tmp_path_factory.mktemp("audio")
    render_corpus(["music21:bach", "music21:folk"], out, settings=RenderSettings(24000, 1.0, 2),
                  soundfont=soundfont, max_pieces_per_source=8, jobs=1, progress=False)
    return out


@pytest.fixture(scope="module")
def trained(corpus):
    return train_instrument_critic(corpus, TINY, progress=False)


@pytest.fixture(scope="module")
def bundle(trained, corpus, tmp_path_factory) -> Path:
    model, instruments, mel, figures = trained
    return export_instrument_critic(model, instruments, mel, TINY, figures, corpus,
                                    tmp_path_factory.mktemp("critic") / "critic")


def test_exported_critic_is_a_bundle_eval_loads(bundle):
    critic = load_instrument_critic(bundle)
    assert critic.instruments == [name for _, name in INSTRUMENTS]
    assert critic.settings == MelSettings(sample_rate=24000)
    assert critic.min_frames == 4  # two conv blocks, two poolings


def test_onnx_agrees_with_torch_on_real_clips(trained, bundle, corpus):
    model = trained[0]
    audio, _, rate = load_clips(corpus, "test")
    logits, embeddings = load_instrument_critic(bundle).run(np.asarray(audio), rate)
    with torch.no_grad():
        want_logits, want_embeddings = model(torch.from_numpy(log_mel(audio, trained[2])))
    assert embeddings.shape == (len(audio), TINY.embed_dim)
    assert np.abs(logits - want_logits.numpy()).max() < 1e-4
    assert np.abs(embeddings - want_embeddings.numpy()).max() < 1e-4


def test_held_out_figures_are_recorded(bundle, corpus):
    training = load_bundle(bundle).training
    tested = {c["instrument"] for c in load_clips(corpus, "test")[1]}
    per = training["test_accuracy_per_instrument"]
    assert set(per) == tested and all(0.0 <= v <= 1.0 for v in per.values())
    assert training["chance"] == pytest.approx(0.1) and training["steps"] == TINY.steps
    assert training["frechet_valid_test"] >= 0.0 and training["frechet_train_test"] >= 0.0
    assert load_bundle(bundle).manifest["parity"]["max_abs_diff"] < 1e-4


@pytest.fixture(scope="module")
def train_mels(corpus) -> ClipMels:
    return ClipMels(corpus, "train", [name for _, name in INSTRUMENTS], MelSettings())


def crops(data: ClipMels, augment: Augment | None):
    return data.batch(16, 40, np.random.default_rng(0), augment)


def test_a_gain_adds_one_constant_per_crop_and_leaves_silence(train_mels):
    plain, labels = crops(train_mels, None)
    louder, same = crops(train_mels, Augment(gain_db=12.0, tilt_db=0.0, noise_p=0.0))
    assert plain.shape == (16, 64, 40) and torch.equal(labels, same)
    floor = train_mels.floor
    for a, b in zip(plain.numpy(), louder.numpy(), strict=True):
        heard = a > floor + 2 * np.log(4.0)  # far above the floor: never clamped to it
        shift = b[heard] - a[heard]
        assert np.ptp(shift) < 1e-5 and 0 < abs(shift[0]) <= np.log(4.0) + 1e-5
        assert (b >= floor).all() and (b[a == floor] == floor).all()


def test_noise_only_adds_power_and_fades_with_the_snr(train_mels):
    plain = crops(train_mels, None)[0].numpy()
    loud = crops(train_mels, Augment(0.0, 0.0, 1.0, (0.0, 0.0)))[0].numpy()
    faint = crops(train_mels, Augment(0.0, 0.0, 1.0, (90.0, 90.0)))[0].numpy()
    assert (loud >= plain - 1e-5).all() and (loud - plain).mean() > 0.5
    heard = plain > np.log(1e-2)
    assert np.abs(faint - plain)[heard].max() < 1e-3


def test_noise_in_the_log_mel_domain_is_close_to_noise_in_the_audio(corpus):
    """The shortcut (powers add) against the spectrogram of the noisy audio itself."""
    mel = MelSettings()
    audio = np.asarray(load_clips(corpus, "test")[0]).astype(np.float32) / 32768
    noise = np.random.default_rng(0).standard_normal(audio.shape).astype(np.float32)
    scale = np.sqrt(np.mean(audio**2, axis=1, keepdims=True)) * 0.1  # 20 dB SNR
    real = log_mel(audio + noise * scale, mel)
    shortcut = 0.5 * np.logaddexp(2 * log_mel(audio, mel),
                                  2 * (log_mel(noise, mel) + np.log(scale)[:, :, None]))
    assert np.abs(real - shortcut).mean() < 0.2 * np.abs(real - log_mel(audio, mel)).mean()


def test_a_one_instrument_corpus_is_refused(corpus, tmp_path):
    copy = tmp_path / "one"
    shutil.copytree(corpus, copy)
    meta = json.loads((copy / METADATA).read_text())
    for clips in meta["splits"].values():
        for clip in clips:
            clip["instrument"] = "piano"
    (copy / METADATA).write_text(json.dumps(meta))
    with pytest.raises(CadenzaError, match="one instrument"):
        train_instrument_critic(copy, TINY, progress=False)


def test_config_file_reads_tuples_and_the_frozen_augment(tmp_path):
    path = tmp_path / "critic.yaml"
    path.write_text("kind: instrument-critic\nchannels: [4, 8]\naugment:\n  snr_db: [20, 40]\n")
    config = load_instrument_critic_config(path, ["augment.noise_p=0.25", "embed_dim=8"])
    assert config.channels == (4, 8) and config.embed_dim == 8
    assert config.augment == Augment(noise_p=0.25, snr_db=(20.0, 40.0))
