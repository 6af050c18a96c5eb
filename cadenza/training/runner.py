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

from cadenza.atomic import atomic_path, atomic_write_text, temp_path_for
from cadenza.errors import CadenzaError

LAST, BEST, METRICS_LOG = "last.pt", "best.pt", "metrics.jsonl"
LAST_PREV = "last.prev.pt"  # the last.pt before the latest save: --resume's fallback


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


def save_checkpoint(checkpoint: dict, path: str | Path) -> None:
    """`checkpoint` written atomically: `path` is the old checkpoint or the whole new one."""
    with atomic_path(path) as tmp:
        torch.save(checkpoint, tmp)


def write_json(path: Path, figures: dict) -> None:
    """A run's final figures (metrics.json, figures.json), indented for reading."""
    atomic_write_text(path, json.dumps(figures, indent=2) + "\n")


def _flat(value: Any, prefix: str) -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flat(item, f"{prefix}.{key}"))
        return out
    if isinstance(value, tuple):  # a dataclass's tuple is a YAML file's list
        value = list(value)
    return {prefix: value}


def check_resumable(
    checkpoint: dict,
    model_config: dict,
    state: dict[str, torch.Tensor] | None = None,
    *,
    state_key: str = "model",
    path: str | Path = LAST,
    kind: str | None = None,
) -> None:
    """Raise, in one line naming the field, when the run's model config is not the one the
    checkpoint was trained with in a field that shapes the model: before any state dict is
    loaded (which would fail with torch's `size mismatch` traceback). With `state` (the new
    model's state dict), a changed field that leaves every tensor's shape alone (dropout,
    say) is allowed; without it, any changed field is refused."""
    if kind is not None and checkpoint.get("kind", kind) != kind:
        raise CadenzaError(
            f"kind: the checkpoint has {checkpoint['kind']}, the config {kind}; "
            "start a new --out or drop --resume"
        )
    saved = (checkpoint.get("config") or {}).get("model")
    if not isinstance(saved, dict):
        raise CadenzaError(f"{path}: the checkpoint names no model config; drop --resume")
    old, new = _flat(saved, "model"), _flat(model_config, "model")
    changed = [k for k in new if k in old and old[k] != new[k]]
    changed += [k for k in new if k not in old] + [k for k in old if k not in new]
    if not changed:
        return
    if state is not None:
        saved_state = checkpoint.get(state_key)
        if (
            isinstance(saved_state, dict)
            and set(saved_state) == set(state)
            and all(
                tuple(getattr(saved_state[k], "shape", ())) == tuple(state[k].shape) for k in state
            )
        ):
            return  # nothing that shapes the model changed
    field = changed[0]
    has = old.get(field, "nothing")
    wants = new.get(field, "nothing")
    raise CadenzaError(
        f"{field}: the checkpoint has {has}, the config {wants}; start a new --out or drop --resume"
    )


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

    def last_checkpoint(
        self,
        model_config: dict | None = None,
        state: dict[str, torch.Tensor] | None = None,
        *,
        state_key: str = "model",
        kind: str | None = None,
    ) -> dict | None:
        """When resuming: OUT/last.pt, or, when that is missing or unreadable (a run killed
        by an older version mid-write, a damaged disk), the previous last.pt (last.prev.pt)
        or best.pt, saying so in one line. None to start afresh (not resuming, or no
        checkpoint at all); an error naming the file when none of them is readable.
        With `model_config` (the run's config["model"] as a dict) and `state` (the new
        model's state dict), a checkpoint of a differently shaped model is refused in one
        line naming the field (`check_resumable`), before any state dict is loaded."""
        if not self.resume:
            return None
        path = self.out / LAST
        candidates = [self.out / name for name in (LAST, LAST_PREV, BEST)]
        present = [p for p in candidates if p.is_file()]
        if not present:
            if self.is_main:
                print(f"no {path} to resume from; starting afresh")
            return None
        problems: list[str] = []
        for candidate in present:
            try:
                checkpoint = load_checkpoint(candidate)
            except CadenzaError as e:
                problems.append(str(e))
                continue
            if candidate != path and self.is_main:
                why = problems[0] if problems else f"{path}: missing"
                print(f"{why}; resuming from {candidate} (step {checkpoint.get('step', '?')})")
            if model_config is not None:
                check_resumable(
                    checkpoint, model_config, state, state_key=state_key, path=candidate, kind=kind
                )
            return checkpoint
        raise CadenzaError(
            f"{problems[0]}, and no earlier checkpoint in {self.out} is readable; "
            "drop --resume or start a new --out"
        )

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
        """OUT/last.pt, and OUT/best.pt too when the validation `improved` on the best; each
        written atomically. The last.pt it replaces is kept as last.prev.pt (--resume's
        fallback). At every moment one of last.pt, last.prev.pt is a whole checkpoint."""
        last, prev = self.out / LAST, self.out / LAST_PREV
        tmp = temp_path_for(last)
        try:
            torch.save(checkpoint, tmp)
            with open(tmp, "rb") as file:
                os.fsync(file.fileno())
            if last.is_file():
                os.replace(last, prev)
            os.replace(tmp, last)
        finally:
            tmp.unlink(missing_ok=True)
        if improved:
            save_checkpoint(checkpoint, self.out / BEST)

    def barrier(self) -> None:
        self.processes.barrier()

    def gather(self, value: str) -> list[str]:
        return self.processes.gather(value)

    def close(self) -> None:
        """The metrics log closed, the process group (under torchrun) ended."""
        if self.log is not None:
            self.log.close()
        self.processes.close()
