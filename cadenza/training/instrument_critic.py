"""The instrument critic: a small log-mel CNN that tells the audio corpus' instruments apart.

The audio tagging CNNs of the literature made small (Choi et al. 2016; Kong et al. 2020's
PANNs CNN: 3x3 conv blocks, then the mean and max over time): four conv blocks over a
64-mel spectrogram, an embedding layer, a linear head over the General MIDI instruments the
corpus was rendered with. Trained on random crops of the train split's clips, chosen by clip
accuracy on the valid split, exported to
ONNX (parity-checked) as a bundle that cadenza.eval.audio runs with onnxruntime: it judges
whether codec-lm plays the instrument a prompt names, and its embeddings give our FAD.
The log-mel front end is cadenza.eval.audio.log_mel (numpy), for training and evaluation.

The corpus is clean SoundFont audio; generated audio is not. Trained on clean crops alone,
the critic called a piano with noise at 30 dB SNR anything but a piano, which would blame
the timbre for the codec's hiss. So the crops are degraded as a codec might degrade them:
noise at a random SNR, a spectral tilt, a gain. All in the log-mel domain (the crops'
spectrograms are computed once), where a gain is an added constant and added noise adds
power to every bin.
Run it as a module:

    python -m cadenza.training.instrument_critic \
        --data data/audio/music21-bach+music21-palestrina+music21-folk -o models/instrument-critic
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
import torch.nn.functional as F
from torch import nn

from cadenza.bundle import FORMAT, load_bundle, write_bundle
from cadenza.corpus.audio import METADATA, load_clips
from cadenza.critic_manifests import (
    InstrumentCriticManifest,
    InstrumentCriticModel,
    MelRepresentation,
)
from cadenza.errors import CadenzaError
from cadenza.eval.audio import (
    GRAPH,
    PLUGIN,
    InstrumentCritic,
    MelSettings,
    log_mel,
    real_reference,
)
from cadenza.export.onnx_io import onnx_graph
from cadenza.training.classifier import critic_main, no_checkpoint_to_resume, train_classifier
from cadenza.training.runner import seed_and_threads
from cadenza.training.settings import fill_settings, require_at_least_one

PARITY_TOLERANCE = 1e-4
KIND = "instrument-critic"


@dataclass(frozen=True)
class Augment:
    """How training crops are degraded (see the module's docstring)."""

    gain_db: float = 12.0  # a gain of up to +-gain_db
    tilt_db: float = 6.0  # up to +-tilt_db more at the top band than at the bottom
    noise_p: float = 0.5  # the share of crops with white or pink noise added
    snr_db: tuple[float, float] = (10.0, 50.0)  # the noise's SNR, uniform in dB


@dataclass
class InstrumentCriticConfig:
    kind: str = KIND
    data: str = "data/audio/music21-bach+music21-palestrina+music21-folk"  # `corpus render`
    out: str = "models/instrument-critic"  # the bundle cadenza.eval.audio loads
    crop_seconds: float = 2.0  # training crops; evaluation hears whole clips
    channels: tuple[int, ...] = (16, 32, 64, 128)
    # 64, not VGGish's 128: the Frechet distance fits a covariance to ~160 held-out clips,
    # which 128 dimensions would leave nearly singular.
    embed_dim: int = 64
    dropout: float = 0.2
    augment: Augment = field(default_factory=Augment)
    batch_size: int = 32
    steps: int = 2000
    lr: float = 2e-3
    eval_every: int = 250
    seed: int = 0
    threads: int = 1


class MelCNN(nn.Module):
    """mels (batch, n_mels, frames) log-mel -> (logits (batch, instruments),
    embedding (batch, embed_dim))."""

    def __init__(self, c: InstrumentCriticConfig, instruments: int, n_mels: int):
        super().__init__()
        # Per-mel-band standardisation, fitted to the train split once: inside the graph, so
        # the bundle cannot be run with the wrong statistics.
        self.register_buffer("mean", torch.zeros(n_mels, 1))
        self.register_buffer("std", torch.ones(n_mels, 1))
        blocks, width = [], 1
        for out in c.channels:
            blocks += [nn.Conv2d(width, out, 3, padding=1, bias=False), nn.BatchNorm2d(out),
                       nn.ReLU(), nn.MaxPool2d(2)]
            width = out
        self.blocks = nn.Sequential(*blocks)
        self.embedding = nn.Linear(2 * width, c.embed_dim)
        self.drop = nn.Dropout(c.dropout)
        self.head = nn.Linear(c.embed_dim, instruments)

    def forward(self, mels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.blocks(((mels - self.mean) / self.std).unsqueeze(1)).mean(dim=2)  # (b, c, t)
        # Mean and max over time: a sustained timbre and a short attack both count.
        embedding = self.embedding(torch.cat([x.mean(dim=2), x.amax(dim=2)], dim=1))
        return self.head(self.drop(F.relu(embedding))), embedding


# ------------------------------------------------------------------------------------------
class ClipMels:
    """A split's clips as log-mel spectrograms (computed once) with instrument labels."""

    def __init__(self, corpus: Path, split: str, instruments: list[str], mel: MelSettings):
        audio, clips, rate = load_clips(corpus, split)
        if rate != mel.sample_rate:
            raise CadenzaError(f"{corpus}: rendered at {rate} Hz, the critic hears "
                               f"{mel.sample_rate} Hz")
        self.mels = log_mel(np.asarray(audio), mel)
        self.labels = np.array([instruments.index(c["instrument"]) for c in clips], np.int64)
        self.rms = np.sqrt(np.mean((np.asarray(audio, np.float64) / 32768) ** 2, axis=1))
        self.floor = float(np.log(np.float32(mel.floor)))
        self.noise = noise_mels(mel, audio.shape[1])

    def batch(self, size: int, frames: int, rng: np.random.Generator,
              augment: Augment | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        rows = rng.integers(0, len(self.labels), size)
        starts = rng.integers(0, self.mels.shape[2] - frames + 1, size)
        crops = np.stack([self.mels[r, :, s : s + frames] for r, s in zip(rows, starts,
                                                                             strict=True)])
        if augment is not None:
            crops = self.degrade(crops, self.rms[rows], augment, rng)
        return torch.from_numpy(crops), torch.from_numpy(self.labels[rows])

    def degrade(self, crops: np.ndarray, rms: np.ndarray, a: Augment,
                rng: np.random.Generator) -> np.ndarray:
        size, bands, frames = crops.shape
        # Noise of unit RMS scaled to the SNR; power adds: log|X+N| ~ log sqrt(|X|^2 + |N|^2).
        noisy = rng.random(size) < a.noise_p
        snr = rng.uniform(*a.snr_db, size)
        which = rng.integers(0, len(self.noise), size)
        starts = rng.integers(0, self.noise.shape[2] - frames + 1, size)
        for k in np.flatnonzero(noisy):
            scale = np.log(max(rms[k], 1e-6)) - snr[k] / 20 * np.log(10)
            noise = self.noise[which[k], :, starts[k] : starts[k] + frames] + scale
            crops[k] = 0.5 * np.logaddexp(2 * crops[k], 2 * noise)
        # A gain and a tilt multiply the magnitudes (add to the logs); the floor stays.
        db = np.log(10) / 20
        gain = rng.uniform(-a.gain_db, a.gain_db, (size, 1, 1)) * db
        tilt = rng.uniform(-a.tilt_db, a.tilt_db, (size, 1, 1)) * db
        shift = (gain + tilt * np.linspace(-0.5, 0.5, bands)[:, None]).astype(np.float32)
        return np.maximum(np.where(crops > self.floor, crops + shift, crops), self.floor)


def noise_mels(mel: MelSettings, samples: int, count: int = 8) -> np.ndarray:
    """Log-mels of `count` white and `count` pink noises of unit RMS (seeded)."""
    rng = np.random.default_rng(1234)
    white = rng.standard_normal((2 * count, samples))
    spectrum = np.fft.rfft(white[count:], axis=1)
    spectrum /= np.sqrt(np.maximum(np.arange(spectrum.shape[1]), 1.0))  # 1/f power: pink
    white[count:] = np.fft.irfft(spectrum, n=samples, axis=1)
    white /= np.sqrt(np.mean(white**2, axis=1, keepdims=True))
    return log_mel(white.astype(np.float32), mel)


def corpus_instruments(corpus: Path) -> list[str]:
    """The instrument names the corpus was rendered with, in its order (the head's order)."""
    meta = json.loads((Path(corpus) / METADATA).read_text())
    return [str(name) for _, name in meta["instruments"]]


@torch.no_grad()
def clip_accuracy(model: MelCNN, data: ClipMels, instruments: list[str]) -> dict:
    """Accuracy on whole clips, overall and per instrument (as InstrumentCritic judges)."""
    model.eval()
    guesses = np.concatenate([model(torch.from_numpy(data.mels[i : i + 32]))[0].argmax(1).numpy()
                              for i in range(0, len(data.labels), 32)])
    model.train()
    right = guesses == data.labels
    per = {name: round(float(right[data.labels == k].mean()), 4)
           for k, name in enumerate(instruments) if (data.labels == k).any()}
    return {"accuracy": float(right.mean()), "per_instrument": per}


def train_instrument_critic(corpus: Path, c: InstrumentCriticConfig, progress: bool = True):
    """(best model by valid accuracy, instrument names, front-end settings, figures)."""
    seed_and_threads(c.seed, c.threads)
    rng = np.random.default_rng(c.seed)
    instruments = corpus_instruments(corpus)
    mel = MelSettings(sample_rate=int(json.loads((corpus / METADATA).read_text())["sample_rate"]))
    started = time.perf_counter()
    train, valid = (ClipMels(corpus, s, instruments, mel) for s in ("train", "valid"))
    if not len(valid.labels):
        raise CadenzaError(f"{corpus}: no clip in the valid split to choose the critic by")
    if len(np.unique(train.labels)) < 2:
        raise CadenzaError(f"{corpus}: the train split has one instrument only")
    frames = min(mel.frames(round(c.crop_seconds * mel.sample_rate)), train.mels.shape[2])
    model = MelCNN(c, len(instruments), mel.n_mels)
    model.mean.copy_(torch.from_numpy(train.mels.mean(axis=(0, 2))[:, None]))
    model.std.copy_(torch.from_numpy(train.mels.std(axis=(0, 2))[:, None] + 1e-3))
    best = train_classifier(
        model, c, batch=lambda: train.batch(c.batch_size, frames, rng, c.augment),
        logits=lambda x: model(x)[0],
        accuracy=lambda: clip_accuracy(model, valid, instruments)["accuracy"],
        desc="instrument critic", progress=progress,
    )
    test = clip_accuracy(model, ClipMels(corpus, "test", instruments, mel), instruments)
    figures = {
        "steps": c.steps,
        "valid_accuracy": round(best, 4),
        "test_accuracy": round(test["accuracy"], 4),
        "test_accuracy_per_instrument": test["per_instrument"],
        "chance": round(1 / len(instruments), 4),
        "seconds": round(time.perf_counter() - started, 1),
    }
    return model, instruments, mel, figures


# ------------------------------------------------------------------------------------------
def critic_graph(model: MelCNN, n_mels: int) -> bytes:
    return onnx_graph(
        model, (torch.zeros(2, n_mels, 64),), ["mels"], ["logits", "embedding"],
        {"mels": {0: "batch", 2: "frames"}, "logits": {0: "batch"}, "embedding": {0: "batch"}},
    )


@torch.no_grad()
def parity_check(model: MelCNN, graph: bytes, n_mels: int) -> float:
    """Worst difference of logits and embeddings, torch vs onnxruntime, at two lengths (the
    graph's frame axis is free, and odd lengths floor in the poolings)."""
    session = ort.InferenceSession(graph, providers=["CPUExecutionProvider"])
    worst = 0.0
    for frames in (184, 373):
        mels = torch.randn(3, n_mels, frames) * 2 - 4
        logits, embedding = model(mels)
        got = session.run(["logits", "embedding"], {"mels": mels.numpy()})
        worst = max(worst, float(np.abs(logits.numpy() - got[0]).max()),
                    float(np.abs(embedding.numpy() - got[1]).max()))
    if worst > PARITY_TOLERANCE:
        raise CadenzaError(f"instrument critic parity check failed: outputs differ by {worst:.2e}")
    return worst


def export_instrument_critic(model: MelCNN, instruments: list[str], mel: MelSettings,
                             c: InstrumentCriticConfig, figures: dict, corpus: Path, out: Path,
                             reference: bool = True) -> Path:
    """Write the bundle; with `reference`, the Frechet distances between the corpus' real
    splits through the written graph go into its `training` figures."""
    graph = critic_graph(model, mel.n_mels)
    worst = parity_check(model, graph, mel.n_mels)
    manifest = {
        "format": FORMAT,
        "plugin": PLUGIN,
        "name": f"{Path(corpus).name}-instrument-critic",
        **InstrumentCriticManifest(
            representation=MelRepresentation(**asdict(mel)),
            model=InstrumentCriticModel(instruments=tuple(instruments),
                                        crop_seconds=c.crop_seconds, embed_dim=c.embed_dim,
                                        channels=tuple(c.channels)),
        ).checked().to_dict(),
        "graphs": {GRAPH: "critic.onnx"},
        "io": {GRAPH: {
            "inputs": {"mels": {"shape": ["batch", mel.n_mels, "frames"], "dtype": "float32"}},
            "outputs": {
                "logits": {"shape": ["batch", len(instruments)], "dtype": "float32"},
                "embedding": {"shape": ["batch", c.embed_dim], "dtype": "float32"},
            },
        }},
        "training": {"data": str(corpus), "parameters": sum(p.numel() for p in model.parameters()),
                     **figures},
        "parity": {"max_abs_diff": float(f"{worst:.3g}")},
    }
    write_bundle(out, manifest, {GRAPH: graph})
    critic = InstrumentCritic(load_bundle(out))  # what we ship must be what eval accepts
    if reference:
        manifest["training"].update(real_reference(critic, corpus))
        write_bundle(out, manifest, {GRAPH: graph})
    return out


def load_instrument_critic_config(path: str | Path | None = None,
                                  overrides: list[str] | None = None) -> InstrumentCriticConfig:
    """Defaults, then the YAML file, then each `key=value` (`augment.noise_p=0.3`)."""
    config = fill_settings(InstrumentCriticConfig(), path, overrides, kind=KIND)
    require_at_least_one(config, "batch_size", "steps", "eval_every", "embed_dim")
    return config


def train(config: InstrumentCriticConfig, *, resume: bool = False,
          progress: bool = True) -> dict:
    """Train on `config.data`, export the bundle to `config.out`; returns the bundle's
    training record (with the Frechet distances between the corpus' real splits). A critic
    trains in minutes and keeps no checkpoint: `resume` starts afresh."""
    if resume:
        no_checkpoint_to_resume("instrument critic")
    data = Path(config.data)
    model, instruments, mel, figures = train_instrument_critic(data, config, progress)
    out = export_instrument_critic(model, instruments, mel, config, figures, data,
                                   Path(config.out))
    training = load_bundle(out).training
    print(f"instrument critic ({len(instruments)} instruments): held-out accuracy "
          f"{figures['test_accuracy']:.3f} (valid {figures['valid_accuracy']:.3f}, chance "
          f"{figures['chance']:.3f}); Frechet valid-test {training['frechet_valid_test']:.2f}, "
          f"train-test {training['frechet_train_test']:.2f} -> {out}")
    for name, accuracy in figures["test_accuracy_per_instrument"].items():
        print(f"  {name:<16} {accuracy:.3f}")
    return training


def main(argv: list[str] | None = None) -> int:
    return critic_main(argv, description="Train and export the instrument critic.",
                       defaults=InstrumentCriticConfig,
                       load_config=load_instrument_critic_config, train=train)


if __name__ == "__main__":
    raise SystemExit(main())
