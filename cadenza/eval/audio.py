"""The instrument critic at evaluation time: which instrument a clip sounds like, and how far
a set of clips lies from real ones, by onnxruntime. No torch here.

A small CNN over log-mel spectrograms (trained by cadenza.training.instrument_critic on the
rendered audio corpus) gives, per clip, logits over the corpus' General MIDI instruments and
an embedding. Two figures judge text-conditioned audio with it:
- the recognition rate: the share of clips asked for instrument X that the critic hears as X;
- the Frechet distance between Gaussians fitted to the embeddings of generated and of
  held-out real clips: FAD (Kilgour et al. 2019) with our critic in place of VGGish, which
  has heard nothing else but this corpus' SoundFont, so it measures what we trained on.

The log-mel front end runs here in numpy, for training and evaluation alike (the graph takes
mel frames), so the two can never disagree; its settings are the bundle's `representation`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from cadenza.bundle import Bundle, default_bundle_path, load_bundle
from cadenza.corpus.audio import load_clips
from cadenza.critic_manifests import InstrumentCriticManifest
from cadenza.errors import BundleError, CadenzaError
from cadenza.plugins.base import create_session

PLUGIN = "instrument-critic"
GRAPH = "classify"
BATCH = 32  # clips per graph run: bounded memory for a long list of clips


@dataclass(frozen=True)
class MelSettings:
    """The front end: natural-log mel magnitudes, Hann windows, no centring (frames start at
    sample 0, so a crop of frames is the spectrogram of a crop of samples)."""

    sample_rate: int = 24000
    n_fft: int = 1024
    hop: int = 256
    n_mels: int = 64
    floor: float = 1e-5  # -100 dB, as the codec's losses: silence is one value, not -inf

    def to_dict(self) -> dict:
        return {"kind": "log-mel", **asdict(self)}

    def frames(self, samples: int) -> int:
        return 0 if samples < self.n_fft else 1 + (samples - self.n_fft) // self.hop


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1): cadenza.training.codec_losses.mel_filterbank in numpy (HTK
    mel scale, triangles of unit area, an empty one given its nearest bin)."""
    bins = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    top = 2595.0 * np.log10(1.0 + (sample_rate / 2) / 700.0)
    edges = 700.0 * (10.0 ** (np.linspace(0.0, top, n_mels + 2) / 2595.0) - 1.0)
    low, centre, high = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    filters = np.clip(np.minimum((bins - low) / (centre - low), (high - bins) / (high - centre)),
                      0.0, None)
    empty = filters.sum(axis=1) == 0
    nearest = np.argmin(np.abs(bins[None, :] - centre), axis=1)
    filters[empty, nearest[empty]] = 1.0
    return (filters / filters.sum(axis=1, keepdims=True)).astype(np.float32)


def as_float(clips: np.ndarray) -> np.ndarray:
    """int16 samples (as the corpus stores them) or floats in [-1, 1] -> float32, 2-D."""
    clips = np.asarray(clips)
    if clips.ndim == 1:
        clips = clips[None]
    if clips.dtype == np.int16:
        return clips.astype(np.float32) / 32768.0
    return clips.astype(np.float32, copy=False)


def log_mel(clips: np.ndarray, settings: MelSettings, chunk: int = 64) -> np.ndarray:
    """(clips, samples) audio -> (clips, n_mels, frames) float32 log-mel spectrograms,
    `chunk` clips at a time (the framed view of a whole corpus would not fit in memory)."""
    audio = as_float(clips)
    frames = settings.frames(audio.shape[1])
    if frames == 0:
        raise CadenzaError(f"a clip of {audio.shape[1]} samples is shorter than one "
                           f"{settings.n_fft}-sample window")
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(settings.n_fft) / settings.n_fft)
              ).astype(np.float32)  # periodic Hann, as torch.hann_window
    filters = mel_filterbank(settings.sample_rate, settings.n_fft, settings.n_mels)
    out = np.empty((len(audio), settings.n_mels, frames), dtype=np.float32)
    for first in range(0, len(audio), chunk):
        part = np.lib.stride_tricks.sliding_window_view(
            audio[first : first + chunk], settings.n_fft, axis=1
        )[:, :: settings.hop]
        magnitude = np.abs(np.fft.rfft(part * window, axis=-1)).astype(np.float32)
        mel = np.einsum("mf,ctf->cmt", filters, magnitude)
        out[first : first + chunk] = np.log(np.maximum(mel, settings.floor))
    return out


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """|mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^1/2) between Gaussians fitted to two sets
    of embeddings (rows). Tr (S_a S_b)^1/2 is the sum of the square roots of the eigenvalues
    of S_a^1/2 S_b S_a^1/2, which is symmetric: two eigh calls, no complex sqrtm residue."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise CadenzaError("frechet_distance needs two sets of at least 2 embeddings of one size")
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    values, vectors = np.linalg.eigh(cov_a)
    root_a = (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T
    cross = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
    trace_root = float(np.sqrt(np.clip(cross, 0.0, None)).sum())
    distance = float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b)
                     - 2.0 * trace_root)
    return max(distance, 0.0)  # rounding can leave -1e-12 for identical sets


class InstrumentCritic:
    def __init__(self, bundle: Bundle):
        if bundle.plugin != PLUGIN:
            raise BundleError(bundle.path / "manifest.yaml",
                              f"field 'plugin' is {bundle.plugin!r}, not {PLUGIN!r}")
        section = bundle.section(InstrumentCriticManifest)
        self.instruments = list(section.model.instruments)
        mel = section.representation
        self.settings = MelSettings(sample_rate=mel.sample_rate, n_fft=mel.n_fft, hop=mel.hop,
                                    n_mels=mel.n_mels, floor=mel.floor)
        # One 2x pooling in time per conv block: fewer frames would pool to nothing.
        self.min_frames = 2 ** len(section.model.channels)
        self.bundle = bundle
        self.session = create_session(bundle, GRAPH)

    @property
    def accuracy(self) -> float | None:
        return self.bundle.training.get("test_accuracy")

    def run(self, clips: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray]:
        """(logits (n, instruments), embeddings (n, d)) of (n, samples) clips at `rate` Hz,
        each judged whole (the graph pools over time)."""
        if rate != self.settings.sample_rate:
            raise CadenzaError(f"the instrument critic hears {self.settings.sample_rate} Hz "
                               f"audio, not {rate} Hz")
        clips = as_float(clips)
        if self.settings.frames(clips.shape[1]) < self.min_frames:
            raise CadenzaError(f"clips of {clips.shape[1]} samples are too short for the "
                               "instrument critic")
        logits, embeddings = [], []
        for first in range(0, len(clips), BATCH):
            mels = log_mel(clips[first : first + BATCH], self.settings)
            out = dict(zip(("logits", "embedding"), self.session.run(
                ["logits", "embedding"], {"mels": mels}), strict=True))
            logits.append(out["logits"])
            embeddings.append(out["embedding"])
        width = len(self.instruments)
        return (np.concatenate(logits) if logits else np.zeros((0, width), np.float32),
                np.concatenate(embeddings) if embeddings else np.zeros((0, 0), np.float32))

    def probabilities(self, clips: np.ndarray, rate: int) -> np.ndarray:
        """P(instrument) per clip, (n, instruments)."""
        logits = self.run(clips, rate)[0].astype(np.float64)
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        return probs / probs.sum(axis=1, keepdims=True)

    def classify(self, clips: np.ndarray, rate: int) -> tuple[list[str], np.ndarray]:
        """(instrument name, probabilities) per clip."""
        probs = self.probabilities(clips, rate)
        return [self.instruments[i] for i in probs.argmax(axis=1)], probs

    def embed(self, clips: np.ndarray, rate: int) -> np.ndarray:
        """(n, d) embeddings: what frechet_distance compares."""
        return self.run(clips, rate)[1]

    def recognition_rates(self, clips: np.ndarray, rate: int,
                          requested: list[str]) -> dict[str, float]:
        """Per requested instrument, the share of its clips the critic hears as it (chance is
        1 / instruments). An instrument the critic does not know is an error, not a 0."""
        unknown = sorted(set(requested) - set(self.instruments))
        if unknown:
            raise CadenzaError(f"the instrument critic does not know {', '.join(unknown)}; "
                               f"it knows {', '.join(self.instruments)}")
        if len(requested) != len(as_float(clips)):
            raise CadenzaError(f"{len(requested)} requested instruments for "
                               f"{len(as_float(clips))} clips")
        heard = np.array(self.classify(clips, rate)[0])
        asked = np.array(requested)
        return {name: float(np.mean(heard[asked == name] == name))
                for name in self.instruments if (asked == name).any()}


def real_reference(critic: InstrumentCritic, corpus: str | Path) -> dict[str, float]:
    """Frechet distances between the corpus' real splits on the critic's embeddings: what a
    generator that sounds exactly like the corpus would score (valid vs test, sets of about
    the size one generates for an evaluation), and train vs test."""
    embedded = {}
    for split in ("train", "valid", "test"):
        audio, _, rate = load_clips(corpus, split)
        embedded[split] = critic.embed(np.asarray(audio), rate)
    return {
        "frechet_valid_test": round(frechet_distance(embedded["valid"], embedded["test"]), 3),
        "frechet_train_test": round(frechet_distance(embedded["train"], embedded["test"]), 3),
    }


def load_instrument_critic(path: str | Path | None = None) -> InstrumentCritic | None:
    """The critic at `path`, or the shipped one; None when none is installed and none was
    asked for, an error when the asked one is bad."""
    if path is None:
        try:
            path = default_bundle_path(PLUGIN)
        except CadenzaError:
            return None
    return InstrumentCritic(load_bundle(path))
