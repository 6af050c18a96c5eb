"""The shipped instrument critic, its log-mel front end and the Frechet distance, on real
clips: a Bach chorale played through the SoundFont by every instrument of the corpus."""

from __future__ import annotations

import numpy as np
import pytest

from cadenza.corpus.audio import INSTRUMENTS, ClipPlan, RenderSettings, render_clip
from cadenza.errors import BundleError, CadenzaError
from cadenza.eval.audio import (
    MelSettings,
    frechet_distance,
    load_instrument_critic,
    log_mel,
    mel_filterbank,
)
from cadenza.midi import load_notes
from cadenza.render import find_soundfont

STARTS = (2.0, 8.0, 14.0)  # three 4-s clips of the chorale per instrument
NAMES = [name for _, name in INSTRUMENTS]


@pytest.fixture(scope="module")
def critic():
    found = load_instrument_critic()
    assert found is not None, "no shipped instrument critic in models/instrument-critic"
    return found


@pytest.fixture(scope="module")
def played(chorale_midi) -> tuple[np.ndarray, list[str]]:
    """(clips (30, 96000) float32 at 24 kHz, the instrument of each)."""
    pytest.importorskip("tinysoundfont")
    try:
        soundfont = str(find_soundfont())
    except CadenzaError as e:
        pytest.skip(str(e))
    notes = load_notes(chorale_midi)
    clips, names = [], []
    for program, name in INSTRUMENTS:
        for start in STARTS:
            plan = ClipPlan(0, program, name, 1.0, 0)
            clips.append(render_clip(notes, start, plan, RenderSettings(), soundfont))
            names.append(name)
    return np.stack(clips), names


@pytest.fixture(scope="module")
def embeddings(critic, played) -> np.ndarray:
    return critic.embed(played[0], 24000)


def test_filterbank_is_the_codec_losses_one():
    torch_losses = pytest.importorskip("cadenza.training.codec_losses")
    want = torch_losses.mel_filterbank(24000, 1024, 64).numpy()
    assert np.abs(mel_filterbank(24000, 1024, 64) - want).max() < 1e-6


def test_log_mel_is_torch_stft_through_the_filterbank(played):
    """Against torch in float64: our float32 spectrogram is off by float32 rounding only."""
    torch = pytest.importorskip("torch")
    settings = MelSettings()
    audio = torch.from_numpy(played[0][::7]).double()
    spec = torch.stft(audio, settings.n_fft, settings.hop,
                      window=torch.hann_window(1024, dtype=torch.float64), center=False,
                      return_complex=True).abs()
    filters = torch.from_numpy(mel_filterbank(24000, 1024, 64)).double()
    want = torch.log((filters @ spec).clamp(min=settings.floor)).numpy()
    got = log_mel(played[0][::7], settings)
    assert got.shape == want.shape == (len(audio), 64, settings.frames(96000))
    heard = want > np.log(1e-3)  # near the floor float32's relative error shows in the log
    assert np.abs(got - want)[heard].max() < 1e-3 and np.abs(got - want).max() < 1e-2


def test_int16_and_float_clips_are_the_same_audio(critic, played):
    floats = played[0][:2]
    ints = np.round(floats * 32767).astype(np.int16)
    assert np.abs(critic.probabilities(floats, 24000)
                  - critic.probabilities(ints, 24000)).max() < 1e-3


def test_shipped_critic_knows_the_corpus_instruments(critic):
    training = critic.bundle.training
    assert critic.instruments == NAMES
    assert set(training["test_accuracy_per_instrument"]) == set(NAMES)
    assert critic.accuracy > 0.8 and training["chance"] == pytest.approx(0.1)
    assert training["frechet_valid_test"] > 0.0 and training["frechet_train_test"] > 0.0


def test_shipped_critic_recognises_the_instrument_of_a_chorale(critic, played):
    clips, names = played
    rates = critic.recognition_rates(clips, 24000, names)
    assert set(rates) == set(NAMES)
    assert np.mean(list(rates.values())) > 0.6, rates  # chance is 0.1


def test_shipped_critic_still_hears_the_instrument_through_hiss(critic, played):
    """Generated audio is not clean: white noise at 20 dB SNR must not hide the timbre."""
    clips, names = played
    rms = np.sqrt(np.mean(clips**2, axis=1, keepdims=True))
    noise = np.random.default_rng(0).standard_normal(clips.shape).astype(np.float32)
    rates = critic.recognition_rates(clips + noise * rms * 0.1, 24000, names)
    assert np.mean(list(rates.values())) > 0.5, rates


def test_probabilities_are_a_distribution_over_the_instruments(critic, played):
    probs = critic.probabilities(played[0][:4], 24000)
    assert probs.shape == (4, len(NAMES))
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-6)


def test_embeddings_are_one_row_per_clip(embeddings, played):
    assert embeddings.shape == (len(played[1]), 64) and np.isfinite(embeddings).all()


def test_frechet_distance_of_a_set_to_itself_is_zero(embeddings):
    assert frechet_distance(embeddings, embeddings) == pytest.approx(0.0, abs=1e-6)


def test_frechet_distance_is_symmetric(embeddings):
    a, b = embeddings[::2], embeddings[1::2]
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-6)


def test_a_shifted_set_is_as_far_as_its_shift(embeddings):
    """Same covariance: the distance is exactly the squared shift of the mean."""
    shift = np.linspace(-1.0, 1.0, embeddings.shape[1])
    assert frechet_distance(embeddings, embeddings + shift) == pytest.approx(
        float(shift @ shift), abs=1e-3)  # 30 clips in 64-d: a singular covariance
    assert frechet_distance(embeddings, embeddings + 2 * shift) > frechet_distance(
        embeddings, embeddings + shift)


def test_frechet_distance_matches_scipy_sqrtm(embeddings):
    linalg = pytest.importorskip("scipy.linalg")
    a, b = embeddings[:15], embeddings[15:]
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = linalg.sqrtm(ca @ cb).real
    want = ((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(ca + cb - 2 * root)
    assert frechet_distance(a, b) == pytest.approx(want, rel=1e-4, abs=1e-4)


def test_one_instrument_is_farther_from_another_than_from_itself(critic, played):
    """Two renderings of the organ vs the organ and the flute: the critic's space
    separates timbres, which is what makes it an FAD for this corpus."""
    clips, names = played
    organ = critic.embed(clips[[n == "church organ" for n in names]], 24000)
    flute = critic.embed(clips[[n == "flute" for n in names]], 24000)
    within = max(np.linalg.norm(x - organ.mean(0)) for x in organ)
    assert np.linalg.norm(organ.mean(0) - flute.mean(0)) > within


def test_an_unknown_instrument_or_rate_is_refused(critic, played):
    with pytest.raises(CadenzaError, match="does not know kazoo"):
        critic.recognition_rates(played[0][:1], 24000, ["kazoo"])
    with pytest.raises(CadenzaError, match="not 16000 Hz"):
        critic.classify(played[0][:1], 16000)
    with pytest.raises(CadenzaError, match="too short"):
        critic.embed(played[0][:1, :2000], 24000)


def test_a_generator_bundle_is_not_an_instrument_critic(tiny_bundle):
    with pytest.raises(BundleError, match="field 'plugin'"):
        load_instrument_critic(tiny_bundle)
