"""The training loop: one process, or several under `torchrun` (DistributedDataParallel).

Checkpoints hold only tensors and plain data so that `torch.load(weights_only=True)` reads
them; `--resume` continues from `last.pt` with the optimizer, step and sampler state.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from tqdm import tqdm

from cadenza.corpus.prepare import corpus_representation, load_split, load_styles
from cadenza.errors import CadenzaError
from cadenza.eval.ngram import BigramKN
from cadenza.parts import PartsCodec
from cadenza.training.config import MODEL_CONFIGS, TrainConfig
from cadenza.training.data import (
    IGNORE,
    WindowSampler,
    conditioned_window_batches,
    length_buckets,
    sequence_batches,
)
from cadenza.training.performance_rnn import PerformanceRNN
from cadenza.training.transformer import MusicTransformer

MODELS: dict[str, type[torch.nn.Module]] = {
    "performance-rnn": PerformanceRNN,
    "transformer": MusicTransformer,
}


def _setup_distributed(device: str) -> tuple[int, int, torch.device]:
    """Rank, world size and this process's device; torchrun sets the environment."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise CadenzaError("--device cuda: no CUDA device is available to torch")
    if world > 1:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if device.startswith("cuda"):
            torch.cuda.set_device(local)
            dist.init_process_group("nccl")
            return rank, world, torch.device("cuda", local)
        dist.init_process_group("gloo")
    return rank, world, torch.device(device)


def wrap_for_devices(model: torch.nn.Module, device: torch.device, world: int) -> torch.nn.Module:
    """The module the loop calls: DistributedDataParallel under torchrun, else the model."""
    if world == 1:
        return model
    return torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None
    )


def autocast_for(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA; full precision on the CPU."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def progress_bar(total: int, initial: int, *, rank: int, progress: bool, desc: str) -> tqdm:
    """The training progress bar, shown by rank 0 only."""
    return tqdm(
        total=total,
        initial=initial,
        disable=not progress or rank != 0,
        desc=desc,
        unit="step",
        dynamic_ncols=True,
    )


def _lr(config: TrainConfig, step: int) -> float:
    """Linear warmup, then cosine decay to min_lr at max_steps."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = min(
        1.0, (step - config.warmup_steps) / max(1, config.max_steps - config.warmup_steps)
    )
    return config.min_lr + 0.5 * (config.lr - config.min_lr) * (1 + math.cos(math.pi * progress))


def set_learning_rate(optimizer: torch.optim.Optimizer, config, step: int) -> None:
    """The schedule's rate for `step` into every parameter group. `config` is any training
    config with lr, min_lr, warmup_steps and max_steps."""
    for group in optimizer.param_groups:
        group["lr"] = _lr(config, step)


def is_conditioned(model: torch.nn.Module) -> bool:
    """A model whose windows start with a conditioning (style) token: the transformer."""
    return isinstance(model, MusicTransformer)


def condition(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, styles: np.ndarray
) -> tuple[torch.Tensor, torch.Tensor]:
    """Lead each window with its style token (a share of them with "any", so that untagged
    generation works too); the window's first event becomes a target, predicted from the style.
    Columns past every window's end are cut: the chorales are often shorter than a window."""
    c = model.config
    tokens = torch.from_numpy(c.vocab_size + styles)
    untagged = torch.rand(len(tokens)) < c.style_dropout
    tokens = torch.where(untagged, c.vocab_size, tokens).to(x.dtype).view(-1, 1)
    x = torch.cat([tokens, x], dim=1)
    y = torch.cat([x[:, 1:2], y], dim=1)
    width = int((y != IGNORE).sum(1).max()) if len(y) else y.size(1)
    return x[:, :width], y[:, :width]


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
        if styles is None:
            styles = np.zeros(len(offsets) - 1, dtype=np.int64)
        batches = conditioned_window_batches(
            tokens, offsets, model.config.vocab_size + styles, window, window // 2
        )
    else:
        batches = sequence_batches(tokens, offsets)
    for x, y in batches:
        x, y = x.to(device), y.to(device)
        logits, _ = model(x)
        loss = F.cross_entropy(
            logits.float().reshape(-1, logits.size(-1)),
            y.reshape(-1),
            ignore_index=IGNORE,
            reduction="sum",
        )
        total += float(loss)
        count += int((y != IGNORE).sum())
    model.train()
    return total / max(count, 1)


def load_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CadenzaError(f"{path}: no such checkpoint")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a damaged file
        raise CadenzaError(f"{path}: not a readable checkpoint ({type(e).__name__})") from None


def build_model(kind: str, model_config) -> torch.nn.Module:
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
    rank, world, device = _setup_distributed(config.device)
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    out = Path(config.out)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)

    train_tokens, train_offsets = load_split(config.data, "train")
    valid_tokens, valid_offsets = load_split(config.data, "valid")
    # Each rank draws its own windows: a different seed per rank, the same sampler otherwise.
    sampler = WindowSampler(train_tokens, train_offsets, config.seq_len, config.seed + rank)
    train_styles, style_names = load_styles(config.data, "train")
    valid_styles, _ = load_styles(config.data, "valid")
    if config.kind == "transformer":
        config.model.styles = ["any", *style_names]  # conditioning tokens: "any", then these
    representation = corpus_representation(config.data)
    if representation.get("kind") == "parts":  # the backing model: its vocabulary is the corpus's
        if config.kind != "transformer":
            raise CadenzaError(f"{config.data}: a parts corpus trains a transformer only")
        config.model.vocab_size = PartsCodec.from_dict(representation).vocab_size
    model = build_model(config.kind, config.model).to(device)
    window = config.seq_len + 1
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay, betas=(0.9, 0.99)
    )
    step, best = 0, math.inf
    if resume and (out / "last.pt").exists():
        checkpoint = load_checkpoint(out / "last.pt")
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        step, best = checkpoint["step"], checkpoint["best_valid_nll"]
        sampler.set_state(json.loads(checkpoint["sampler"][rank % len(checkpoint["sampler"])]))
    elif resume and rank == 0:
        print(f"no {out / 'last.pt'} to resume from; starting afresh")
    wrapped = wrap_for_devices(model, device, world)
    tokens_per_step = config.batch_size * config.seq_len * world
    eval_every = config.eval_every or max(1, sampler.num_tokens // tokens_per_step)
    autocast = autocast_for(device)
    bar = progress_bar(config.max_steps, step, rank=rank, progress=progress, desc="train")
    log = (out / "metrics.jsonl").open("a" if resume else "w") if rank == 0 else None
    started, loss_avg = time.perf_counter(), None
    metrics: dict = {}
    stop = min(config.stop_at or config.max_steps, config.max_steps)
    while step < stop:
        set_learning_rate(optimizer, config, step)
        x, y = sampler.batch(config.batch_size)
        if is_conditioned(model):
            x, y = condition(model, x, y, train_styles[sampler.last_sequences])
        optimizer.zero_grad(set_to_none=True)
        targets = max(int((y != IGNORE).sum()), 1)
        value = 0.0
        for xs, ys in length_buckets(x, y, config.micro_batches):
            xs, ys = xs.to(device, non_blocking=True), ys.to(device, non_blocking=True)
            with autocast:
                logits, _ = wrapped(xs)
            loss = F.cross_entropy(
                logits.float().reshape(-1, logits.size(-1)),
                ys.reshape(-1),
                ignore_index=IGNORE,
                reduction="sum",
            ) / targets  # the mean over the whole batch, whatever its split
            loss.backward()
            value += loss.item()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        step += 1
        loss_avg = value if loss_avg is None else 0.98 * loss_avg + 0.02 * value
        bar.update(1)
        bar.set_postfix(loss=f"{loss_avg:.3f}", best_valid=f"{best:.3f}")

        if step % eval_every == 0 or step == stop:
            states = [None] * world
            state = json.dumps(sampler.state())
            if world > 1:
                dist.all_gather_object(states, state)
            else:
                states = [state]
            if rank == 0:
                valid_nll = evaluate_nll(
                    model, valid_tokens, valid_offsets, device, valid_styles, window
                )
                elapsed = time.perf_counter() - started
                metrics = {
                    "step": step,
                    "train_loss": round(loss_avg, 4),
                    "valid_nll": round(valid_nll, 4),
                    "seconds": round(elapsed, 1),
                }
                log.write(json.dumps(metrics) + "\n")
                log.flush()
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
                torch.save(checkpoint, out / "last.pt")
                if improved:
                    torch.save(checkpoint, out / "best.pt")
                bar.write(f"step {step}: train {loss_avg:.3f}  valid {valid_nll:.3f} nats/event")
            if world > 1:
                dist.barrier()
    bar.close()
    if rank == 0:
        metrics = finish(out, config, device)
    if world > 1:
        dist.destroy_process_group()
    return metrics


def finish(out: Path, config: TrainConfig, device: torch.device) -> dict:
    """Held-out test NLL of the best checkpoint, written into it and into metrics.json."""
    checkpoint = load_checkpoint(out / "best.pt")
    model = model_from_checkpoint(checkpoint).to(device)
    test_tokens, test_offsets = load_split(config.data, "test")
    test_styles, _ = load_styles(config.data, "test")
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
    checkpoint["metrics"] = metrics
    checkpoint.pop("optimizer", None)  # best.pt is what export reads; keep it small
    torch.save(checkpoint, out / "best.pt")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(
        f"best step {metrics['steps']}: valid {metrics['valid_nll']:.3f}, test "
        f"{metrics['test_nll']:.3f} nats/event (bigram baseline "
        f"{metrics['test_nll_bigram_baseline']:.3f}) -> {out / 'best.pt'}"
    )
    return metrics
