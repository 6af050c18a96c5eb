"""What every trainer's run shares, so that each trainer keeps only its data, model and loss.

- The processes: one, or several under `torchrun` (its environment names the rank and the
  world; DistributedDataParallel wraps the model), each on its device, with bf16 autocast
  on CUDA. Only rank 0 prints, validates and writes.
- The schedule: linear warmup, then cosine decay to `min_lr` at `max_steps`.
- The run folder OUT: `last.pt` (every validation) and `best.pt` (the best validation so far),
  `--resume` from `last.pt`, the validations' `metrics.jsonl` and the final figures' JSON.
  Checkpoints hold only tensors and plain data, so `torch.load(weights_only=True)` reads them.
- The progress bar, shown by rank 0 only.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

import torch
import torch.distributed as dist
from tqdm import tqdm

from cadenza.errors import CadenzaError

LAST, BEST, METRICS_LOG = "last.pt", "best.pt", "metrics.jsonl"


class ScheduleSettings(Protocol):
    """What the learning-rate schedule reads from a trainer's config."""

    lr: float
    min_lr: float
    warmup_steps: int
    max_steps: int


class RunSettings(ScheduleSettings, Protocol):
    """What a run reads from a trainer's config, beside the schedule."""

    out: str
    device: str  # cpu | cuda | cuda:N
    seed: int
    threads: int  # torch intra-op threads on CPU; 0 leaves torch's default


def learning_rate(settings: ScheduleSettings, step: int) -> float:
    """Linear warmup, then cosine decay to min_lr at max_steps."""
    if step < settings.warmup_steps:
        return settings.lr * (step + 1) / settings.warmup_steps
    progress = min(
        1.0, (step - settings.warmup_steps) / max(1, settings.max_steps - settings.warmup_steps)
    )
    return settings.min_lr + 0.5 * (settings.lr - settings.min_lr) * (
        1 + math.cos(math.pi * progress)
    )


def set_learning_rate(
    optimizer: torch.optim.Optimizer, settings: ScheduleSettings, step: int
) -> None:
    """The schedule's rate for `step` into every parameter group."""
    for group in optimizer.param_groups:
        group["lr"] = learning_rate(settings, step)


def seed_and_threads(seed: int, threads: int) -> None:
    """torch's thread count (0: its default) and its seed."""
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)


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


def load_checkpoint(path: str | Path) -> dict:
    """A checkpoint as plain data (`weights_only`: a file from elsewhere can run no code)."""
    path = Path(path)
    if not path.is_file():
        raise CadenzaError(f"{path}: no such checkpoint")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a damaged file
        raise CadenzaError(f"{path}: not a readable checkpoint ({type(e).__name__})") from None


def write_json(path: Path, figures: dict) -> None:
    """A run's final figures (metrics.json, figures.json), indented for reading."""
    path.write_text(json.dumps(figures, indent=2) + "\n")


# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Processes:
    """This process's place in the run: its rank among `world` processes, and its device."""

    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that validates, writes and prints."""
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def gather(self, value: str) -> list[str]:
        """Every rank's `value`, in rank order (a sampler's state, for `--resume`)."""
        if self.world == 1:
            return [value]
        values: list[Any] = [None] * self.world
        dist.all_gather_object(values, value)
        return values

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """The module the loop calls: DistributedDataParallel under torchrun, else the model."""
        if self.world == 1:
            return model
        return torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[self.device.index] if self.device.type == "cuda" else None
        )

    def close(self) -> None:
        if self.world > 1:
            dist.destroy_process_group()


def _checked_device(device: str) -> None:
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise CadenzaError("--device cuda: no CUDA device is available to torch")


def start_processes(device: str, *, distributed: bool = True) -> Processes:
    """Rank, world size and this process's device; torchrun sets the environment. Without
    `distributed` (a trainer that runs in one process), one process on `device`."""
    _checked_device(device)
    if not distributed:
        return Processes(device=torch.device(device))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world > 1:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if device.startswith("cuda"):
            torch.cuda.set_device(local)
            dist.init_process_group("nccl")
            return Processes(rank, world, torch.device("cuda", local))
        dist.init_process_group("gloo")
    return Processes(rank, world, torch.device(device))


class MetricsLog:
    """OUT/metrics.jsonl, one line a validation, written by rank 0 (a no-op elsewhere)."""

    def __init__(self, path: Path, *, append: bool, enabled: bool = True):
        self.file: IO[str] | None = path.open("a" if append else "w") if enabled else None

    def write(self, record: dict) -> None:
        if self.file is not None:
            self.file.write(json.dumps(record) + "\n")
            self.file.flush()  # a run watched while it trains, or cut short, shows every line

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


class TrainingRun:
    """One process's part of a training run into `settings.out`: its processes, the run
    folder (created by rank 0), resuming and checkpointing, the metrics log, the schedule."""

    def __init__(
        self,
        settings: RunSettings,
        *,
        resume: bool,
        progress: bool,
        seed_per_rank: bool = False,
        distributed: bool = True,
    ):
        """`seed_per_rank`: torch's seed is `seed + rank` (each rank draws its own noise),
        else `seed` on every rank. `distributed`: False for a trainer that runs in one
        process only."""
        self.settings = settings
        self.processes = start_processes(settings.device, distributed=distributed)
        self.rank, self.world = self.processes.rank, self.processes.world
        self.device = self.processes.device
        seed_and_threads(settings.seed + (self.rank if seed_per_rank else 0), settings.threads)
        self.out = Path(settings.out)
        if self.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
        self.resume, self.progress = resume, progress
        self.autocast = autocast_for(self.device)
        self.log: MetricsLog | None = None

    @property
    def is_main(self) -> bool:
        return self.processes.is_main

    def last_checkpoint(self) -> dict | None:
        """OUT/last.pt when resuming and it is there; None to start afresh."""
        path = self.out / LAST
        if self.resume and path.is_file():
            return load_checkpoint(path)
        if self.resume and self.is_main:
            print(f"no {path} to resume from; starting afresh")
        return None

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        return self.processes.wrap(model)

    def progress_bar(self, desc: str, initial: int) -> tqdm:
        return progress_bar(
            self.settings.max_steps, initial, rank=self.rank, progress=self.progress, desc=desc
        )

    def set_learning_rate(self, optimizer: torch.optim.Optimizer, step: int) -> None:
        set_learning_rate(optimizer, self.settings, step)

    def open_metrics(self, *, append: bool | None = None) -> MetricsLog:
        """OUT/metrics.jsonl: continued when resuming (or `append`), else begun afresh."""
        append = self.resume if append is None else append
        self.log = MetricsLog(self.out / METRICS_LOG, append=append, enabled=self.is_main)
        return self.log

    def save(self, checkpoint: dict, *, improved: bool) -> None:
        """OUT/last.pt, and OUT/best.pt too when the validation `improved` on the best."""
        torch.save(checkpoint, self.out / LAST)
        if improved:
            torch.save(checkpoint, self.out / BEST)

    def barrier(self) -> None:
        self.processes.barrier()

    def gather(self, value: str) -> list[str]:
        return self.processes.gather(value)

    def close(self) -> None:
        """The metrics log closed, the process group (under torchrun) ended."""
        if self.log is not None:
            self.log.close()
        self.processes.close()
