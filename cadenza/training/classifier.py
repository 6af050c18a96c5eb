"""The critics' shared training loop: a classifier on random batches, kept at its best.

A critic (the style critic, the instrument critic) trains in one process for a fixed number
of steps on the one-cycle schedule (AdamW), judges itself on held-out data every
`eval_every` steps and keeps the weights of its best judgement: it is exported, not resumed,
so its run keeps no checkpoints.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from cadenza.training.runner import progress_bar

Batch = tuple[torch.Tensor, torch.Tensor]  # inputs, class labels


class ClassifierSettings(Protocol):
    """What the loop reads from a critic's config."""

    steps: int
    lr: float
    eval_every: int


def train_classifier(
    model: nn.Module,
    settings: ClassifierSettings,
    *,
    batch: Callable[[], Batch],
    logits: Callable[[torch.Tensor], torch.Tensor],
    accuracy: Callable[[], float],
    desc: str,
    progress: bool,
    grad_clip: float | None = None,
) -> float:
    """Train `model` on `batch()` (cross-entropy of `logits(inputs)`), validate with
    `accuracy()`; leave it with the weights of its best validation, in eval mode, and
    return that accuracy."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, settings.lr,
                                                   total_steps=settings.steps)
    best, best_state = -1.0, None
    bar = progress_bar(settings.steps, 0, rank=0, progress=progress, desc=desc)
    for step in range(1, settings.steps + 1):
        x, y = batch()
        loss = F.cross_entropy(logits(x), y)
        optimizer.zero_grad()
        loss.backward()
        if grad_clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        schedule.step()
        bar.update(1)
        if step % settings.eval_every == 0 or step == settings.steps:
            valid = accuracy()
            if valid > best:
                best = valid
                best_state = {k: v.clone() for k, v in model.state_dict().items()}
            bar.set_postfix(loss=f"{loss.item():.3f}", valid=f"{valid:.3f}")
    bar.close()
    model.load_state_dict(best_state)
    model.eval()
    return best


def critic_main(
    argv: list[str] | None,
    *,
    description: str,
    defaults: Any,
    load_config: Callable[[None, list[str]], Any],
    train: Callable[..., dict],
) -> int:
    """`python -m cadenza.training.<critic>`: --data, -o/--out and --steps onto the critic's
    config (its `defaults` class gives theirs), then train and export."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data", default=defaults.data)
    parser.add_argument("-o", "--out", default=defaults.out)
    parser.add_argument("--steps", type=int, default=defaults.steps)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    overrides = [f"data={args.data}", f"out={args.out}", f"steps={args.steps}"]
    train(load_config(None, overrides), progress=not args.no_progress)
    return 0


def no_checkpoint_to_resume(critic: str) -> None:
    """What `--resume` means to a critic: nothing (it keeps no checkpoint), said once."""
    print(f"the {critic} keeps no checkpoint to resume from; starting afresh")
