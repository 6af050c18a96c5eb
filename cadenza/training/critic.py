"""The style critic: a small transformer encoder that tells bach / palestrina / folk apart.

A composer classifier over performance events, as in the music-classification literature
(Kong et al. 2020's composer classifier, on events rather than a piano roll): embeddings
of the events of a window plus a learned position, two encoder layers, mean-pooled, then
one linear layer to the styles. Trained on random windows of a corpus whose sequences carry
a style (`cadenza corpus prepare music21:bach music21:palestrina music21:folk`), chosen by
held-out accuracy on the valid split, exported to ONNX (parity-checked) as a bundle that
`cadenza eval` runs with onnxruntime (cadenza.eval.critic). Run it as a module:

    python -m cadenza.training.critic --data data/corpus/music21-styles -o models/style-critic
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from cadenza.bundle import FORMAT, load_bundle, write_bundle
from cadenza.corpus.token_files import load_split, load_styles
from cadenza.critic_manifests import StyleCriticManifest, StyleCriticModel
from cadenza.errors import CadenzaError
from cadenza.eval.critic import GRAPH, PLUGIN, StyleCritic
from cadenza.events import PERFORMANCE
from cadenza.export.onnx_io import onnx_graph
from cadenza.manifest import PerformanceRepresentation
from cadenza.training.classifier import critic_main, no_checkpoint_to_resume, train_classifier
from cadenza.training.runner import seed_and_threads
from cadenza.training.settings import fill_settings, require_at_least_one

PARITY_TOLERANCE = 1e-4
KIND = "style-critic"


@dataclass
class CriticConfig:
    kind: str = KIND
    data: str = "data/corpus/music21-styles"  # a corpus of several styles (`corpus prepare`)
    out: str = "models/style-critic"  # the bundle `cadenza eval` loads
    window: int = 256  # events per window; a 20-s sample holds about 350
    d_model: int = 64
    num_layers: int = 2
    num_heads: int = 4
    d_ff: int = 128
    dropout: float = 0.1
    batch_size: int = 32
    steps: int = 1200
    lr: float = 1e-3
    eval_every: int = 250
    seed: int = 0
    threads: int = 1


class EncoderLayer(nn.Module):
    """Pre-norm self-attention and feed-forward, written out: the ONNX export stays plain
    MatMul/Softmax, with padded positions masked by an additive bias."""

    def __init__(self, c: CriticConfig):
        super().__init__()
        self.heads = c.num_heads
        self.norm1, self.norm2 = nn.LayerNorm(c.d_model), nn.LayerNorm(c.d_model)
        self.qkv = nn.Linear(c.d_model, 3 * c.d_model)
        self.proj = nn.Linear(c.d_model, c.d_model)
        self.ff = nn.Sequential(
            nn.Linear(c.d_model, c.d_ff), nn.GELU(), nn.Linear(c.d_ff, c.d_model)
        )
        self.drop = nn.Dropout(c.dropout)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, t, 3, self.heads, d // self.heads).unbind(2)
        q, k, v = (z.transpose(1, 2) for z in (q, k, v))  # (b, heads, t, head_dim)
        scores = q @ k.transpose(-1, -2) / math.sqrt(d // self.heads) + bias
        attended = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, t, d)
        x = x + self.drop(self.proj(attended))
        return x + self.drop(self.ff(self.norm2(x)))


class StyleClassifier(nn.Module):
    """tokens (batch, window) int64, padded with `pad` -> style logits (batch, styles)."""

    def __init__(self, c: CriticConfig, styles: int, vocab_size: int = PERFORMANCE.num_classes):
        super().__init__()
        self.pad = vocab_size
        self.embed = nn.Embedding(vocab_size + 1, c.d_model, padding_idx=vocab_size)
        self.position = nn.Parameter(torch.zeros(1, c.window, c.d_model))
        nn.init.normal_(self.position, std=0.02)
        self.layers = nn.ModuleList(EncoderLayer(c) for _ in range(c.num_layers))
        self.norm = nn.LayerNorm(c.d_model)
        self.head = nn.Linear(c.d_model, styles)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        real = tokens != self.pad  # (b, t)
        bias = torch.where(real, 0.0, -1e9)[:, None, None, :]  # padded keys get no attention
        x = self.embed(tokens) + self.position[:, : tokens.shape[1]]
        for layer in self.layers:
            x = layer(x, bias)
        weights = real.unsqueeze(-1).to(x.dtype)
        pooled = (self.norm(x) * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        return self.head(pooled)


# ------------------------------------------------------------------------------------------
class Windows:
    """Random windows of a split's sequences with their styles, each style drawn equally
    often (a style with fewer pieces is not outvoted)."""

    def __init__(self, corpus: Path, split: str, window: int, rng: np.random.Generator):
        self.tokens, self.offsets = load_split(corpus, split)
        self.styles, self.names = load_styles(corpus, split)
        self.window, self.rng = window, rng
        self.by_style = [np.flatnonzero(self.styles == s) for s in range(len(self.names))]

    def batch(self, size: int, pad: int) -> tuple[torch.Tensor, torch.Tensor]:
        present = [s for s, seqs in enumerate(self.by_style) if len(seqs)]
        labels = self.rng.choice(present, size)
        out = np.full((size, self.window), pad, dtype=np.int64)
        for row, style in enumerate(labels):
            seq = self.rng.choice(self.by_style[style])
            start, end = int(self.offsets[seq]), int(self.offsets[seq + 1])
            first = start + int(self.rng.integers(0, max(end - start - self.window, 0) + 1))
            piece = np.asarray(self.tokens[first : min(first + self.window, end)])
            out[row, : len(piece)] = piece
        return torch.from_numpy(out), torch.from_numpy(labels.astype(np.int64))

    def sequences(self) -> list[np.ndarray]:
        return [np.asarray(self.tokens[a:b]) for a, b in zip(self.offsets[:-1], self.offsets[1:],
                                                              strict=True)]


@torch.no_grad()
def piece_accuracy(model: StyleClassifier, windows: Windows, c: CriticConfig) -> float:
    """Share of held-out pieces whose style is the argmax of the mean probability over up
    to 8 windows: what StyleCritic.probabilities does at evaluation time."""
    model.eval()
    right = 0
    for events, style in zip(windows.sequences(), windows.styles, strict=True):
        starts = np.unique(np.linspace(0, max(len(events) - c.window, 0), 8).astype(int))
        batch = np.full((len(starts), c.window), model.pad, dtype=np.int64)
        for row, s in enumerate(starts):
            piece = events[s : s + c.window]
            batch[row, : len(piece)] = piece
        probs = model(torch.from_numpy(batch)).softmax(-1).mean(0)
        right += int(int(probs.argmax()) == int(style))
    model.train()
    return right / max(len(windows.styles), 1)


def train_critic(corpus: Path, c: CriticConfig, progress: bool = True):
    """(best model by valid accuracy, style names, figures)."""
    seed_and_threads(c.seed, c.threads)
    rng = np.random.default_rng(c.seed)
    train = Windows(corpus, "train", c.window, rng)
    valid = Windows(corpus, "valid", c.window, rng)
    if len(train.names) < 2:
        raise CadenzaError(f"{corpus}: one style only ({train.names[0]}); prepare several "
                           "sources into one corpus for a style critic")
    model = StyleClassifier(c, len(train.names))
    started = time.perf_counter()
    best = train_classifier(
        model, c, batch=lambda: train.batch(c.batch_size, model.pad), logits=model,
        accuracy=lambda: piece_accuracy(model, valid, c), desc="critic", progress=progress,
        grad_clip=1.0,
    )
    figures = {
        "steps": c.steps,
        "valid_accuracy": round(best, 4),
        "test_accuracy": round(piece_accuracy(model, Windows(corpus, "test", c.window, rng), c), 4),
        "seconds": round(time.perf_counter() - started, 1),
    }
    return model, train.names, figures


# ------------------------------------------------------------------------------------------
def critic_graph(model: StyleClassifier, window: int) -> bytes:
    example = torch.full((2, window), model.pad, dtype=torch.int64)
    return onnx_graph(model, (example,), ["tokens"], ["logits"],
                      {"tokens": {0: "batch"}, "logits": {0: "batch"}})


@torch.no_grad()
def parity_check(model: StyleClassifier, graph: bytes, window: int) -> float:
    session = ort.InferenceSession(graph, providers=["CPUExecutionProvider"])
    tokens = torch.randint(0, model.pad, (4, window))
    tokens[1, window // 2 :] = model.pad  # a short piece, padded
    worst = float(np.abs(model(tokens).numpy() - session.run(None, {"tokens": tokens.numpy()})[0]
                         ).max())
    if worst > PARITY_TOLERANCE:
        raise CadenzaError(f"critic parity check failed: logits differ by {worst:.2e}")
    return worst


def export_critic(model: StyleClassifier, styles: list[str], c: CriticConfig, figures: dict,
                  corpus: Path, out: Path) -> Path:
    graph = critic_graph(model, c.window)
    worst = parity_check(model, graph, c.window)
    manifest = {
        "format": FORMAT,
        "plugin": PLUGIN,
        "name": f"{Path(corpus).name}-critic",
        **StyleCriticManifest(
            representation=PerformanceRepresentation.of(PERFORMANCE),
            model=StyleCriticModel(styles=tuple(styles), window=c.window, pad=model.pad, extra={
                k: v for k, v in asdict(c).items() if k in ("d_model", "num_layers", "num_heads",
                                                           "d_ff")}),
        ).checked().to_dict(),
        "graphs": {GRAPH: "critic.onnx"},
        "io": {GRAPH: {
            "inputs": {"tokens": {"shape": ["batch", c.window], "dtype": "int64"}},
            "outputs": {"logits": {"shape": ["batch", len(styles)], "dtype": "float32"}},
        }},
        "training": {"data": str(corpus), "parameters": sum(p.numel() for p in model.parameters()),
                     **figures},
        "parity": {"max_abs_logit_diff": float(f"{worst:.3g}")},
    }
    write_bundle(out, manifest, {GRAPH: graph})
    StyleCritic(load_bundle(out))  # what we ship must be what eval accepts
    return out


def load_critic_config(path: str | Path | None = None,
                       overrides: list[str] | None = None) -> CriticConfig:
    """Defaults, then the YAML file, then each `key=value`."""
    config = fill_settings(CriticConfig(), path, overrides, kind=KIND)
    require_at_least_one(config, "window", "batch_size", "steps", "eval_every")
    return config


def train(config: CriticConfig, *, resume: bool = False, progress: bool = True) -> dict:
    """Train on `config.data`, export the bundle to `config.out`; returns the bundle's
    training record. A critic trains in minutes and keeps no checkpoint: `resume` starts
    afresh."""
    if resume:
        no_checkpoint_to_resume("style critic")
    data = Path(config.data)
    model, styles, figures = train_critic(data, config, progress)
    out = export_critic(model, styles, config, figures, data, Path(config.out))
    print(f"style critic ({', '.join(styles)}): held-out accuracy {figures['test_accuracy']:.3f} "
          f"(valid {figures['valid_accuracy']:.3f}) -> {out}")
    return load_bundle(out).training


def main(argv: list[str] | None = None) -> int:
    return critic_main(argv, description="Train and export the style critic.",
                       defaults=CriticConfig, load_config=load_critic_config, train=train)


if __name__ == "__main__":
    raise SystemExit(main())
