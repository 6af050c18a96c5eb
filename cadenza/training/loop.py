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

from cadenza.corpus.prepare import load_split
from cadenza.errors import CadenzaError
from cadenza.eval.ngram import BigramKN
from cadenza.training.config import ModelConfig, TrainConfig
from cadenza.training.data import IGNORE, WindowSampler, sequence_batches
from cadenza.training.performance_rnn import PerformanceRNN

CHECKPOINT_KIND = "performance-rnn"


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


def _lr(config: TrainConfig, step: int) -> float:
    """Linear warmup, then cosine decay to min_lr at max_steps."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = min(
        1.0, (step - config.warmup_steps) / max(1, config.max_steps - config.warmup_steps)
    )
    return config.min_lr + 0.5 * (config.lr - config.min_lr) * (1 + math.cos(math.pi * progress))


@torch.no_grad()
def evaluate_nll(
    model: PerformanceRNN, tokens: np.ndarray, offsets: np.ndarray, device: torch.device
) -> float:
    """Mean negative log-likelihood in nats per event over whole held-out sequences."""
    model.eval()
    total, count = 0.0, 0
    for x, y in sequence_batches(tokens, offsets):
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


def model_from_checkpoint(checkpoint: dict) -> PerformanceRNN:
    model = PerformanceRNN(ModelConfig(**checkpoint["config"]["model"]))
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
    model = PerformanceRNN(config.model).to(device)
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
    wrapped = (
        torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
        if world > 1
        else model
    )

    tokens_per_step = config.batch_size * config.seq_len * world
    eval_every = config.eval_every or max(1, sampler.num_tokens // tokens_per_step)
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if device.type == "cuda"
        else contextlib.nullcontext()
    )
    bar = tqdm(
        total=config.max_steps,
        initial=step,
        disable=not progress or rank != 0,
        desc="train",
        unit="step",
        dynamic_ncols=True,
    )
    log = (out / "metrics.jsonl").open("a" if resume else "w") if rank == 0 else None
    started, loss_avg = time.perf_counter(), None
    metrics: dict = {}
    while step < config.max_steps:
        for group in optimizer.param_groups:
            group["lr"] = _lr(config, step)
        x, y = sampler.batch(config.batch_size)
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with autocast:
            logits, _ = wrapped(x)
        loss = F.cross_entropy(
            logits.float().reshape(-1, logits.size(-1)), y.reshape(-1), ignore_index=IGNORE
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        step += 1
        value = loss.item()
        loss_avg = value if loss_avg is None else 0.98 * loss_avg + 0.02 * value
        bar.update(1)
        bar.set_postfix(loss=f"{loss_avg:.3f}", best_valid=f"{best:.3f}")

        if step % eval_every == 0 or step == config.max_steps:
            states = [None] * world
            state = json.dumps(sampler.state())
            if world > 1:
                dist.all_gather_object(states, state)
            else:
                states = [state]
            if rank == 0:
                valid_nll = evaluate_nll(model, valid_tokens, valid_offsets, device)
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
                    "kind": CHECKPOINT_KIND,
                    "config": config.to_dict(),
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "step": step,
                    "best_valid_nll": best,
                    "valid_nll": valid_nll,
                    "sampler": states,
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
    bigram = BigramKN(config.model.vocab_size).fit(*load_split(config.data, "train"))
    metrics = {
        "steps": checkpoint["step"],
        "valid_nll": round(checkpoint["valid_nll"], 4),
        "test_nll": round(evaluate_nll(model, test_tokens, test_offsets, device), 4),
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
