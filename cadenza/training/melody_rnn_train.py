"""Training the Melody RNN (`cadenza train melody-rnn`): windows of melodies, the shared run.

A training window is `seq_len` steps of one melody, its inputs computed from the melody with
two bars of history before it (the lookback's), its labels the variant's. Held-out NLL is in
nats per grid step *of the events*: for lookback, a step's probability is that of its class
plus that of every "repeat" label that decodes to the same event, so the three variants and
the n-gram baseline are scored on the same thing (Magenta reports the labels' loss).
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from cadenza.corpus.token_files import METADATA, corpus_representation, load_split
from cadenza.errors import ConfigError
from cadenza.eval.ngram import BigramKN, TrigramKN
from cadenza.melody import VARIANTS, MelodyEncoding
from cadenza.training.data import IGNORE
from cadenza.training.melody_rnn import MelodyModelConfig, MelodyRNN
from cadenza.training.runner import TrainingRun, load_checkpoint, save_checkpoint, write_json
from cadenza.training.settings import fill_settings, require_at_least_one

NAME = "melody-rnn"


@dataclass
class MelodyTrainConfig:
    kind: str = NAME
    data: str = "data/corpus/music21-tunes-melody"
    out: str = "runs/melody-rnn"
    variant: str = "lookback"  # basic | lookback | attention (copied into model.variant)
    model: MelodyModelConfig = field(default_factory=MelodyModelConfig)
    seq_len: int = 256
    batch_size: int = 32
    lr: float = 1e-3  # Magenta's learning_rate
    min_lr: float = 1e-4
    warmup_steps: int = 100
    weight_decay: float = 0.0
    grad_clip: float = 5.0  # Magenta's clip_norm (lookback, basic)
    max_steps: int = 5000
    stop_at: int = 0  # end this run at this step (0: max_steps), in max_steps' schedule: a
    # short comparison of the variants on the shipped run's first steps
    eval_every: int = 250
    seed: int = 1234
    device: str = "cpu"
    threads: int = 1

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def load_config(path: str | None, overrides: list[str]) -> MelodyTrainConfig:
    config = fill_settings(MelodyTrainConfig(), path, overrides, kind=NAME)
    if config.variant not in VARIANTS:
        raise ConfigError("variant", f"is {config.variant!r}, not one of {', '.join(VARIANTS)}")
    config.model.variant = config.variant
    require_at_least_one(config, "seq_len", "batch_size", "max_steps")
    if not (Path(config.data) / METADATA).is_file():
        raise ConfigError("data", f"{config.data} is not a prepared corpus directory (run "
                          "`cadenza corpus prepare music21:tunes --representation melody`)")
    if corpus_representation(config.data).get("kind") != "melody":
        raise ConfigError("data", f"{config.data} holds no melodies (prepare it with "
                          "--representation melody)")
    return config


def encoding_of(data: str | Path) -> MelodyEncoding:
    return MelodyEncoding.from_dict(corpus_representation(data))


def padded(rows: list[tuple[np.ndarray, np.ndarray]]) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs (T, I), labels (T,)) rows -> a batch, padded with zeros / IGNORE."""
    width = max(len(y) for _, y in rows)
    x = np.zeros((len(rows), width, rows[0][0].shape[1]), np.float32)
    y = np.full((len(rows), width), IGNORE, np.int64)
    for i, (inputs, labels) in enumerate(rows):
        x[i, : len(labels)], y[i, : len(labels)] = inputs[: len(labels)], labels
    return torch.from_numpy(x), torch.from_numpy(y)


class MelodyWindows:
    """Random training windows, every start position of every melody equally likely."""

    def __init__(self, tokens: np.ndarray, offsets: np.ndarray, encoding: MelodyEncoding,
                 variant: str, seq_len: int, seed: int):
        self.tokens, self.encoding, self.variant, self.seq_len = tokens, encoding, variant, seq_len
        starts, ends = offsets[:-1], offsets[1:]
        keep = ends - starts >= 2
        self.starts, self.ends = starts[keep], ends[keep]
        self.positions = np.maximum(self.ends - self.starts - seq_len, 1)
        self.cumulative = np.cumsum(self.positions)
        self.rng = np.random.default_rng(seed)

    def window(self, melody: int, first: int) -> tuple[np.ndarray, np.ndarray]:
        """Inputs and labels of `seq_len` steps from step `first` of a melody."""
        begin, end = int(self.starts[melody]), int(self.ends[melody])
        history = max(0, first - self.encoding.lookback[-1])
        stop = min(first + self.seq_len + 1, end - begin)
        chunk = np.asarray(self.tokens[begin + history : begin + stop], np.int64)
        inputs = self.encoding.inputs(chunk, self.variant, history, skip=first - history)[:-1]
        labels = self.encoding.labels(chunk, self.variant, history, skip=first - history + 1)
        return inputs, labels

    def batch(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        pick = self.rng.integers(0, self.cumulative[-1], size=batch_size)
        melody = np.searchsorted(self.cumulative, pick, side="right")
        first = pick - (self.cumulative[melody] - self.positions[melody])
        return padded([self.window(int(m), int(f)) for m, f in zip(melody, first, strict=True)])


def event_nll(logits: torch.Tensor, classes: torch.Tensor, labels: torch.Tensor,
              encoding: MelodyEncoding, variant: str) -> torch.Tensor:
    """Summed -log P(event) over the labelled steps. `classes` (B, T+1) are the melodies
    (the event each label stands for is classes[:, 1:]); a lookback label's probability
    joins its class's where it decodes to the same event."""
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    mask = labels != IGNORE
    target = torch.where(mask, classes[:, 1:], 0)
    total = log_probs[..., :encoding.num_classes].gather(-1, target[..., None])[..., 0]
    if variant == "lookback":
        n = encoding.num_classes
        steps = torch.arange(1, classes.size(1), device=classes.device)
        for i, distance in enumerate(encoding.lookback):
            back = steps - distance
            repeated = torch.where(back[None] >= 0, classes[:, back.clamp(min=0)], 0)
            same = repeated == target
            total = torch.where(same, torch.logaddexp(total, log_probs[..., n + i]), total)
    return -(total * mask).sum()


@torch.no_grad()
def evaluate_nll(model: MelodyRNN, tokens: np.ndarray, offsets: np.ndarray,
                 device: torch.device, batch: int = 64) -> float:
    """Mean NLL in nats per step over whole held-out melodies (every step after the first)."""
    model.eval()
    encoding, variant = model.encoding, model.config.variant
    melodies = [np.asarray(tokens[a:b], np.int64) for a, b in zip(offsets[:-1], offsets[1:],
                                                                 strict=True) if b - a >= 2]
    melodies.sort(key=len)
    total, count = 0.0, 0
    for i in range(0, len(melodies), batch):
        group = melodies[i : i + batch]
        x, y = padded([(encoding.inputs(m, variant)[:-1], encoding.labels(m, variant))
                       for m in group])
        classes = torch.zeros(len(group), y.size(1) + 1, dtype=torch.int64)
        for row, m in enumerate(group):
            classes[row, : len(m)] = torch.from_numpy(m)
        logits, _ = model(x.to(device))
        total += float(event_nll(logits, classes.to(device), y.to(device), encoding, variant))
        count += int((y != IGNORE).sum())
    model.train()
    return total / max(count, 1)


def model_from_checkpoint(checkpoint: dict) -> MelodyRNN:
    model = MelodyRNN(MelodyModelConfig(**checkpoint["config"]["model"]),
                      MelodyEncoding.from_dict(checkpoint["representation"]))
    model.load_state_dict(checkpoint["model"])
    return model.eval()


def train(config: MelodyTrainConfig, *, resume: bool = False, progress: bool = True) -> dict:
    """Train, validate every `eval_every` steps, keep last.pt and best.pt; the final figures."""
    run = TrainingRun(config, resume=resume, progress=progress, distributed=False)
    encoding = encoding_of(config.data)
    windows = MelodyWindows(*load_split(config.data, "train"), encoding, config.variant,
                            config.seq_len, config.seed)
    valid = load_split(config.data, "valid")
    model = MelodyRNN(config.model, encoding).to(run.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr,
                                 weight_decay=config.weight_decay)
    step, best = 0, math.inf
    checkpoint = run.last_checkpoint(config.to_dict()["model"], model.state_dict(), kind=NAME)
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        step, best = checkpoint["step"], checkpoint["best_valid_nll"]
        windows.rng.bit_generator.state = checkpoint["sampler"]
    bar, log = run.progress_bar(f"train {config.variant}", step), run.open_metrics()
    started, loss_avg = time.perf_counter(), None
    stop = min(config.stop_at or config.max_steps, config.max_steps)
    while step < stop:
        run.set_learning_rate(optimizer, step)
        x, y = windows.batch(config.batch_size)
        logits, _ = model(x.to(run.device))
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.to(run.device).reshape(-1),
                               ignore_index=IGNORE)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        step += 1
        loss_avg = loss.item() if loss_avg is None else 0.98 * loss_avg + 0.02 * loss.item()
        bar.update(1)
        bar.set_postfix(loss=f"{loss_avg:.3f}", best_valid=f"{best:.3f}")
        if step % config.eval_every == 0 or step == stop:
            valid_nll = evaluate_nll(model, *valid, run.device)
            log.write({"step": step, "train_loss": round(loss_avg, 4),
                       "valid_nll": round(valid_nll, 4),
                       "seconds": round(time.perf_counter() - started, 1)})
            improved, best = valid_nll < best, min(best, valid_nll)
            run.save({"kind": NAME, "config": config.to_dict(), "model": model.state_dict(),
                      "optimizer": optimizer.state_dict(), "step": step,
                      "best_valid_nll": best, "valid_nll": valid_nll,
                      "sampler": windows.rng.bit_generator.state,
                      "representation": encoding.to_dict()}, improved=improved)
            bar.write(f"step {step}: train {loss_avg:.3f}  valid {valid_nll:.3f} nats/step")
    bar.close()
    metrics = finish(run.out, config, run.device)
    run.close()
    return metrics


def finish(out: Path, config: MelodyTrainConfig, device: torch.device) -> dict:
    """Held-out test NLL of the best checkpoint beside Kneser-Ney n-grams of the events,
    written into it and into metrics.json."""
    checkpoint = load_checkpoint(out / "best.pt")
    model = model_from_checkpoint(checkpoint).to(device)
    test_tokens, test_offsets = load_split(config.data, "test")
    train_split = load_split(config.data, "train")
    bigram = BigramKN(model.encoding.num_classes).fit(*train_split)
    trigram = TrigramKN(model.encoding.num_classes).fit(*train_split)
    metrics = {
        "variant": config.variant,
        "steps": checkpoint["step"],
        "valid_nll": round(checkpoint["valid_nll"], 4),
        "test_nll": round(evaluate_nll(model, test_tokens, test_offsets, device), 4),
        "test_nll_bigram_baseline": round(bigram.nll(test_tokens, test_offsets), 4),
        "test_nll_trigram_baseline": round(trigram.nll(test_tokens, test_offsets), 4),
        "test_steps": int(len(test_tokens) - (len(test_offsets) - 1)),
    }
    checkpoint["metrics"] = metrics
    checkpoint.pop("optimizer", None)
    save_checkpoint(checkpoint, out / "best.pt")
    write_json(out / "metrics.json", metrics)
    print(f"best step {metrics['steps']}: valid {metrics['valid_nll']:.3f}, test "
          f"{metrics['test_nll']:.3f} nats/step (bigram baseline "
          f"{metrics['test_nll_bigram_baseline']:.3f}) -> {out / 'best.pt'}")
    return metrics
