"""The training loop: one process, or several under `torchrun` (DistributedDataParallel).

Checkpoints hold only tensors and plain data so that `torch.load(weights_only=True)` reads
them; `--resume` continues from `last.pt` with the optimizer, step and sampler state.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from cadenza.corpus.token_files import corpus_representation, load_split, load_styles
from cadenza.errors import CadenzaError
from cadenza.eval.ngram import BigramKN
from cadenza.parts import PartsCodec
from cadenza.training.config import MODEL_CONFIGS, EventModelConfig, TrainConfig, TransformerConfig
from cadenza.training.data import (
    IGNORE,
    WindowSampler,
    conditioned_window_batches,
    length_buckets,
    sequence_batches,
)
from cadenza.training.init_from import load_initial_weights
from cadenza.training.performance_rnn import PerformanceRNN
from cadenza.training.runner import TrainingRun, load_checkpoint, save_checkpoint, write_json
from cadenza.training.transformer import MusicTransformer

MODELS: dict[str, type[torch.nn.Module]] = {
    "performance-rnn": PerformanceRNN,
    "transformer": MusicTransformer,
}


def is_conditioned(model: torch.nn.Module) -> bool:
    """A model whose windows start with a conditioning (style) token: the transformer."""
    return isinstance(model, MusicTransformer)


def style_tokens(model: torch.nn.Module, styles: np.ndarray) -> np.ndarray:
    """The conditioning token of each corpus style index. The model's table is "any", then the
    corpus's styles, so style i is token vocab_size + 1 + i (vocab_size alone is "any"): the
    name a bundle's `style` knob picks is the token the model learnt under that name."""
    return model.config.vocab_size + 1 + np.asarray(styles, dtype=np.int64)


def condition(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, styles: np.ndarray
) -> tuple[torch.Tensor, torch.Tensor]:
    """Lead each window with its style token (a share of them with "any", so that untagged
    generation works too); the window's first event becomes a target, predicted from the style.
    Columns past every window's end are cut: the chorales are often shorter than a window."""
    c = model.config
    tokens = torch.from_numpy(style_tokens(model, styles))
    untagged = torch.rand(len(tokens)) < c.style_dropout
    tokens = torch.where(untagged, c.vocab_size, tokens).to(x.dtype).view(-1, 1)
    x = torch.cat([tokens, x], dim=1)
    y = torch.cat([x[:, 1:2], y], dim=1)
    width = int((y != IGNORE).sum(1).max()) if len(y) else y.size(1)
    return x[:, :width], y[:, :width]


def summed_nll(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The negative log-likelihood of every target token, summed (padding left out)."""
    return F.cross_entropy(
        logits.float().reshape(-1, logits.size(-1)),
        targets.reshape(-1),
        ignore_index=IGNORE,
        reduction="sum",
    )


@torch.no_grad()
def evaluate_nll(
    model: torch.nn.Module,
    tokens: np.ndarray,
    offsets: np.ndarray,
    device: torch.device,
    styles: np.ndarray | None = None,
    window: int = 1024,
) -> float:
    """Mean negative log-likelihood in nats per event over whole held-out sequences.

    The LSTM reads each sequence whole; the transformer reads windows of `window` tokens that
    overlap by half, each led by the sequence's style. Both score the same tokens.
    """
    model.eval()
    total, count = 0.0, 0
    if is_conditioned(model):
        leads = (  # untagged sequences are led by "any"
            np.full(len(offsets) - 1, model.config.vocab_size, dtype=np.int64)
            if styles is None else style_tokens(model, styles)
        )
        batches = conditioned_window_batches(tokens, offsets, leads, window, window // 2)
    else:
        batches = sequence_batches(tokens, offsets)
    for x, y in batches:
        x, y = x.to(device), y.to(device)
        logits, _ = model(x)
        total += float(summed_nll(logits, y))
        count += int((y != IGNORE).sum())
    model.train()
    return total / max(count, 1)


def pick_sequences(
    tokens: np.ndarray, offsets: np.ndarray, keep: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The sequences where `keep` (one bool per sequence) is true, as tokens and offsets."""
    pieces = [tokens[a:b] for a, b, k in zip(offsets[:-1], offsets[1:], keep, strict=True) if k]
    lengths = np.array([len(piece) for piece in pieces], dtype=np.int64)
    picked = np.concatenate(pieces) if pieces else tokens[:0]
    return picked, np.concatenate([[0], np.cumsum(lengths)]).astype(offsets.dtype)


def build_model(kind: str, model_config: EventModelConfig) -> torch.nn.Module:
    return MODELS[kind](model_config)


def model_from_checkpoint(checkpoint: dict) -> torch.nn.Module:
    kind = checkpoint.get("kind", "performance-rnn")
    if kind not in MODELS:
        raise CadenzaError(f"checkpoint kind {kind!r} is not a model this version trains")
    model = build_model(kind, MODEL_CONFIGS[kind](**checkpoint["config"]["model"]))
    model.load_state_dict(checkpoint["model"])
    return model.eval()


def train(config: TrainConfig, *, resume: bool = False, progress: bool = True) -> dict:
    """Train, validate every epoch, keep last.pt and best.pt; returns the final metrics."""
    run = TrainingRun(config, resume=resume, progress=progress)
    train_tokens, train_offsets = load_split(config.data, "train")
    valid_tokens, valid_offsets = load_split(config.data, "valid")
    # Each rank draws its own windows: a different seed per rank, the same sampler otherwise.
    sampler = WindowSampler(train_tokens, train_offsets, config.seq_len, config.seed + run.rank)
    train_styles, style_names = load_styles(config.data, "train")
    valid_styles, _ = load_styles(config.data, "valid")
    if isinstance(config.model, TransformerConfig):
        config.model.styles = ["any", *style_names]  # conditioning tokens: "any", then these
    representation = corpus_representation(config.data)
    if representation.get("kind") == "parts":  # the backing model: its vocabulary is the corpus's
        if config.kind != "transformer":
            raise CadenzaError(f"{config.data}: a parts corpus trains a transformer only")
        config.model.vocab_size = PartsCodec.from_dict(representation).vocab_size
    model = build_model(config.kind, config.model).to(run.device)
    window = config.seq_len + 1
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay, betas=(0.9, 0.99)
    )
    step, best = 0, math.inf
    if (
        checkpoint := run.last_checkpoint(
            config.to_dict()["model"], model.state_dict(), kind=config.kind
        )
    ) is not None:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        step, best = checkpoint["step"], checkpoint["best_valid_nll"]
        states = checkpoint["sampler"]
        sampler.set_state(json.loads(states[run.rank % len(states)]))
    elif config.init_from:
        load_initial_weights(model, config.init_from)
    wrapped = run.wrap(model)
    tokens_per_step = config.batch_size * config.seq_len * run.world
    eval_every = config.eval_every or max(1, sampler.num_tokens // tokens_per_step)
    bar = run.progress_bar("train", step)
    log = run.open_metrics()
    started, loss_avg = time.perf_counter(), None
    stop = min(config.stop_at or config.max_steps, config.max_steps)
    while step < stop:
        run.set_learning_rate(optimizer, step)
        x, y = sampler.batch(config.batch_size)
        if is_conditioned(model):
            x, y = condition(model, x, y, train_styles[sampler.last_sequences])
        optimizer.zero_grad(set_to_none=True)
        targets = max(int((y != IGNORE).sum()), 1)
        value = 0.0
        for xs, ys in length_buckets(x, y, config.micro_batches):
            xs = xs.to(run.device, non_blocking=True)
            ys = ys.to(run.device, non_blocking=True)
            with run.autocast:
                logits, _ = wrapped(xs)
            # The mean over the whole batch, whatever its split.
            loss = summed_nll(logits, ys) / targets
            loss.backward()
            value += loss.item()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        step += 1
        loss_avg = value if loss_avg is None else 0.98 * loss_avg + 0.02 * value
        bar.update(1)
        bar.set_postfix(loss=f"{loss_avg:.3f}", best_valid=f"{best:.3f}")

        if step % eval_every == 0 or step == stop:
            states = run.gather(json.dumps(sampler.state()))
            if run.is_main:
                valid_nll = evaluate_nll(
                    model, valid_tokens, valid_offsets, run.device, valid_styles, window
                )
                log.write(
                    {
                        "step": step,
                        "train_loss": round(loss_avg, 4),
                        "valid_nll": round(valid_nll, 4),
                        "seconds": round(time.perf_counter() - started, 1),
                    }
                )
                improved = valid_nll < best
                best = min(best, valid_nll)
                checkpoint = {
                    "kind": config.kind,
                    "config": config.to_dict(),
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "step": step,
                    "best_valid_nll": best,
                    "valid_nll": valid_nll,
                    "sampler": states,
                    "representation": representation,
                }
                run.save(checkpoint, improved=improved)
                bar.write(f"step {step}: train {loss_avg:.3f}  valid {valid_nll:.3f} nats/event")
            run.barrier()
    bar.close()
    metrics: dict = finish(run.out, config, run.device) if run.is_main else {}
    run.close()
    return metrics


def finish(out: Path, config: TrainConfig, device: torch.device) -> dict:
    """Held-out test NLL of the best checkpoint, written into it and into metrics.json."""
    checkpoint = load_checkpoint(out / "best.pt")
    model = model_from_checkpoint(checkpoint).to(device)
    test_tokens, test_offsets = load_split(config.data, "test")
    test_styles, style_names = load_styles(config.data, "test")
    bigram = BigramKN(config.model.vocab_size).fit(*load_split(config.data, "train"))
    # The best checkpoint's own window: after a run with longer windows (--resume with another
    # seq_len), the best may still be one from the shorter ones.
    window = int(checkpoint["config"]["seq_len"]) + 1
    test_nll = evaluate_nll(model, test_tokens, test_offsets, device, test_styles, window)
    metrics = {
        "steps": checkpoint["step"],
        "valid_nll": round(checkpoint["valid_nll"], 4),
        "test_nll": round(test_nll, 4),
        "test_nll_bigram_baseline": round(bigram.nll(test_tokens, test_offsets), 4),
        "test_events": int(len(test_tokens) - (len(test_offsets) - 1)),
    }
    if is_conditioned(model) and len(style_names) > 1:  # each style under its own token
        metrics["test_nll_by_style"] = {
            name: round(evaluate_nll(
                model, *pick_sequences(test_tokens, test_offsets, test_styles == index),
                device, test_styles[test_styles == index], window), 4)
            for index, name in enumerate(style_names) if (test_styles == index).any()
        }
    checkpoint["metrics"] = metrics
    checkpoint.pop("optimizer", None)  # best.pt is what export reads; keep it small
    save_checkpoint(checkpoint, out / "best.pt")
    write_json(out / "metrics.json", metrics)
    print(
        f"best step {metrics['steps']}: valid {metrics['valid_nll']:.3f}, test "
        f"{metrics['test_nll']:.3f} nats/event (bigram baseline "
        f"{metrics['test_nll_bigram_baseline']:.3f}) -> {out / 'best.pt'}"
    )
    return metrics
