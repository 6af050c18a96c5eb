"""Training the segment VAE, and its held-out figures.

The VAE learns from pairs of successive bar-aligned segments (the reconstruction and KL of
both, the transition from the first to the second), so it has its own loop; the run around
it (processes, schedule, checkpoints in the token loop's format, the metrics log) is
cadenza.training.runner's.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from cadenza.errors import CadenzaError
from cadenza.training.runner import TrainingRun, load_checkpoint, save_checkpoint, write_json
from cadenza.training.vae import (
    SegmentVAE,
    VAEModelConfig,
    VAETrainConfig,
    gaussian_kl,
    reconstruction,
)
from cadenza.training.vae_data import Segments, build_cache, load_pieces, make_segments

ACTIVE_VARIANCE = 0.01  # a latent dimension is active when its posterior mean varies more


class PairSampler:
    """Random pairs of successive segments, each pair transposed by one random amount."""

    def __init__(self, segments: Segments, transpose: int, seed: int):
        self.segments = segments
        self.firsts = np.flatnonzero(segments.next >= 0)
        if len(self.firsts) == 0:
            raise ValueError("no two successive segments in the training data")
        self.transpose = transpose
        self.rng = np.random.default_rng(seed)

    def batch(self, size: int, grid) -> tuple[torch.Tensor, torch.Tensor]:
        first = self.rng.choice(self.firsts, size)
        shift = self.rng.integers(-self.transpose, self.transpose + 1, size)
        prev = self.segments.rolls(first, grid, shift)
        nxt = self.segments.rolls(self.segments.next[first], grid, shift)
        return torch.from_numpy(prev), torch.from_numpy(nxt)

    def state(self) -> str:
        return json.dumps(self.rng.bit_generator.state)

    def set_state(self, state: str) -> None:
        self.rng.bit_generator.state = json.loads(state)


def model_from_checkpoint(checkpoint: dict) -> SegmentVAE:
    model = SegmentVAE(VAEModelConfig(**checkpoint["config"]["model"]))
    model.load_state_dict(checkpoint["model"])
    return model.eval()


def _segments(config: VAETrainConfig, split: str) -> Segments:
    pieces, styles, _ = load_pieces(config.cache, split)
    return make_segments(pieces, styles, config.model.grid)


def train(config: VAETrainConfig, *, resume: bool = False, progress: bool = True) -> dict:
    """Train, validate every `eval_every` steps, keep last.pt and best.pt; returns the
    held-out figures of the best checkpoint."""
    run = TrainingRun(config, resume=resume, progress=progress, seed_per_rank=True)
    if run.is_main:
        build_cache(
            config.data,
            config.cache,
            steps_per_quarter=config.model.steps_per_quarter,
            max_pieces_per_source=config.max_pieces_per_source,
            jobs=config.jobs,
            progress=progress,
        )
    run.barrier()  # the cache is written once, by rank 0
    grid = config.model.grid
    sampler = PairSampler(_segments(config, "train"), config.transpose, config.seed + run.rank)
    valid = _segments(config, "valid")
    valid_pairs = _fixed_pairs(valid, config.eval_pairs, config.seed)
    if len(valid_pairs) == 0:
        raise CadenzaError(
            f"{config.cache}: the valid split has no two successive {grid.bars}-bar segments "
            f"in {grid.beats_per_bar}/{grid.beat_unit}; add pieces (max_pieces_per_source)"
        )
    model = SegmentVAE(config.model).to(run.device)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    step, best = 0, math.inf
    if (
        checkpoint := run.last_checkpoint(config.to_dict()["model"], model.state_dict())
    ) is not None:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        step, best = checkpoint["step"], checkpoint["best_valid_loss"]
        sampler.set_state(checkpoint["sampler"][run.rank % len(checkpoint["sampler"])])
        torch.set_rng_state(checkpoint["torch_rng"])
    wrapped = run.wrap(model)
    bar = run.progress_bar("train vae", step)
    log = run.open_metrics()
    started, avg = time.perf_counter(), None
    while step < config.max_steps:
        run.set_learning_rate(optimizer, step)
        beta = config.beta * min(1.0, step / max(1, config.kl_anneal_steps))
        prev, nxt = sampler.batch(config.batch_size, grid)
        with run.autocast:
            loss, terms = wrapped(
                prev.to(run.device),
                nxt.to(run.device),
                beta,
                config.free_bits,
                config.transition_weight,
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        step += 1
        values = {k: float(v) for k, v in terms.items()}
        avg = values if avg is None else {k: 0.98 * avg[k] + 0.02 * values[k] for k in values}
        bar.update(1)
        bar.set_postfix(
            recon=f"{avg['recon']:.1f}", kl=f"{avg['kl']:.1f}", next=f"{avg['transition']:.1f}"
        )
        if step % config.eval_every == 0 or step == config.max_steps:
            states = run.gather(sampler.state())
            if run.is_main:
                figures = validate(model, valid, valid_pairs, run.device, config.beta)
                log.write(
                    {
                        "step": step,
                        **{f"train_{k}": round(v, 3) for k, v in avg.items()},
                        **figures,
                        "seconds": round(time.perf_counter() - started, 1),
                    }
                )
                improved = figures["valid_loss"] < best
                best = min(best, figures["valid_loss"])
                checkpoint = {
                    "kind": "vae",
                    "config": config.to_dict(),
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "step": step,
                    "best_valid_loss": best,
                    "valid_loss": figures["valid_loss"],
                    "sampler": states,
                    "torch_rng": torch.get_rng_state(),
                }
                run.save(checkpoint, improved=improved)
                bar.write(
                    f"step {step}: valid recon {figures['valid_recon']:.2f} + KL "
                    f"{figures['valid_kl']:.2f} nats/segment, "
                    f"next {figures['valid_transition']:.2f}"
                )
            run.barrier()
    bar.close()
    metrics: dict = finish(run.out, config, run.device) if run.is_main else {}
    run.close()
    return metrics


def _fixed_pairs(segments: Segments, count: int, seed: int) -> np.ndarray:
    """The same held-out first segments of pairs at every validation."""
    firsts = np.flatnonzero(segments.next >= 0)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(firsts, min(count, len(firsts)), replace=False))


@torch.no_grad()
def _encode_all(model: SegmentVAE, segments: Segments, index: np.ndarray, device, batch: int = 256):
    rolls, mus, logvars = [], [], []
    grid = model.config.grid
    for i in range(0, len(index), batch):
        r = torch.from_numpy(segments.rolls(index[i : i + batch], grid)).to(device)
        mu, logvar = model.encode(r)
        rolls.append(r)
        mus.append(mu)
        logvars.append(logvar)
    return torch.cat(rolls), torch.cat(mus), torch.cat(logvars)


@torch.no_grad()
def validate(
    model: SegmentVAE, segments: Segments, firsts: np.ndarray, device, beta: float
) -> dict:
    """The loss terms on held-out pairs (codes at the posterior mean, no sampling noise).
    `valid_loss`, which picks best.pt, is the objective at the full KL weight (recon + beta
    KL): the ELBO (beta 1) would prefer the early checkpoints that code less, as the KL grows
    while the reconstruction improves."""
    model.eval()
    rolls, mu, logvar = _encode_all(
        model, segments, np.concatenate([firsts, segments.next[firsts]]), device
    )
    recon, _ = reconstruction(model.teacher_forced(mu, rolls), rolls)
    kl = gaussian_kl(mu, logvar).sum(-1)
    b = len(firsts)
    t_mu, t_logvar = model.next_code(mu[:b])
    transition = gaussian_kl(mu[b:], logvar[b:], t_mu, t_logvar).sum(-1)
    model.train()
    return {
        "valid_loss": round(float((recon + beta * kl).mean()), 4),
        "valid_elbo": round(float((recon + kl).mean()), 4),
        "valid_recon": round(float(recon.mean()), 4),
        "valid_kl": round(float(kl.mean()), 4),
        "valid_transition": round(float(transition.mean()), 4),
    }


@torch.no_grad()
def greedy_decode(model: SegmentVAE, z: torch.Tensor) -> torch.Tensor:
    """Rolls decoded from codes, each step fed back (threshold 0.5; a hold only where the
    pitch sounded the step before), as the plugin decodes at temperature 0."""
    state = model.initial_state(z)
    frame = torch.zeros(len(z), 1, 3, model.pitches, device=z.device)
    frames = []
    for _ in range(model.steps):
        logits, state = model.decode(z, frame, state)
        sounding = (frame[:, :, 0] + frame[:, :, 1]) > 0
        onset = logits[:, :, 0] > 0
        hold = (logits[:, :, 1] > 0) & sounding & ~onset
        velocity = torch.sigmoid(logits[:, :, 2]) * onset
        frame = torch.stack([onset.float(), hold.float(), velocity], dim=2)
        frames.append(frame)
    return torch.cat(frames, dim=1)


def step_accuracy(predicted: torch.Tensor, rolls: torch.Tensor) -> float:
    """Share of steps whose onsets and holds are all right (MusicVAE's per-step accuracy,
    for a polyphonic frame)."""
    same = (predicted[:, :, :2] > 0.5) == (rolls[:, :, :2] > 0.5)
    return float(same.all(dim=(2, 3)).float().mean())


def onset_f1(predicted: torch.Tensor, rolls: torch.Tensor) -> float:
    p, t = predicted[:, :, 0] > 0.5, rolls[:, :, 0] > 0.5
    hits = float((p & t).sum())
    return 2 * hits / max(float(p.sum() + t.sum()), 1.0)


@torch.no_grad()
def held_out_figures(
    model: SegmentVAE, segments: Segments, device, count: int = 1024, seed: int = 0
) -> dict:
    """The manifest's figures on held-out segments (see the README's VAE section)."""
    model.eval()
    firsts = _fixed_pairs(segments, count, seed)
    seconds = segments.next[firsts]
    rolls, mu, logvar = _encode_all(model, segments, np.concatenate([firsts, seconds]), device)
    teacher = model.teacher_forced(mu, rolls)
    recon, _ = reconstruction(teacher, rolls)
    sampled = greedy_decode(model, mu)
    kl_dims = gaussian_kl(mu, logvar).mean(0)
    active = mu.var(0) > ACTIVE_VARIANCE

    b = len(firsts)
    prev_mu, next_rolls = mu[:b], rolls[b:]
    shuffled = torch.from_numpy(np.random.default_rng(seed + 1).permutation(b))

    def continuation(codes: torch.Tensor) -> tuple[float, float]:
        logits = model.teacher_forced(codes, next_rolls)
        nll, _ = reconstruction(logits, next_rolls)
        return float(nll.mean()), step_accuracy((logits > 0).float(), next_rolls)

    smoothness = interpolation_smoothness(model, mu[: min(b, 64)], mu[b:][shuffled[: min(b, 64)]])
    true_nll, true_acc = continuation(model.next_code(prev_mu)[0])
    wrong_nll, wrong_acc = continuation(model.next_code(prev_mu[shuffled])[0])
    prior_nll, prior_acc = continuation(torch.zeros_like(prev_mu))
    return {
        "test_segments": int(len(rolls)),
        "recon_nll": round(float(recon.mean()), 3),
        "step_accuracy_teacher_forced": round(step_accuracy((teacher > 0).float(), rolls), 4),
        "step_accuracy_sampled": round(step_accuracy(sampled, rolls), 4),
        "onset_f1_sampled": round(onset_f1(sampled, rolls), 4),
        "kl": round(float(kl_dims.sum()), 3),
        "kl_per_dim": [round(float(v), 3) for v in kl_dims],
        "active_dims": int(active.sum()),
        "continuation_pairs": int(b),
        "continuation_nll": round(true_nll, 3),
        "continuation_nll_shuffled": round(wrong_nll, 3),
        "continuation_nll_prior": round(prior_nll, 3),
        "continuation_accuracy": round(true_acc, 4),
        "continuation_accuracy_shuffled": round(wrong_acc, 4),
        "continuation_accuracy_prior": round(prior_acc, 4),
        **smoothness,
    }


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Row-wise spherical interpolation (as cadenza.plugins.vae.slerp)."""
    cos = (a * b).sum(-1, keepdim=True) / (
        a.norm(dim=-1, keepdim=True) * b.norm(dim=-1, keepdim=True)
    )
    omega = torch.acos(cos.clamp(-1.0, 1.0)).clamp(min=1e-6)
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)


@torch.no_grad()
def interpolation_smoothness(
    model: SegmentVAE, a: torch.Tensor, b: torch.Tensor, steps: int = 8
) -> dict:
    """Decode (greedily) `steps` codes slerped from each a to its b; the Hamming distance of
    the sounding piano rolls of consecutive steps, against that of the two ends."""
    rolls = [
        greedy_decode(model, slerp(a, b, i / (steps - 1)))[:, :, :2].sum(2) > 0
        for i in range(steps)
    ]
    consecutive = torch.stack(
        [(x != y).float().sum((1, 2)) for x, y in zip(rolls[:-1], rolls[1:], strict=True)]
    )
    ends = (rolls[0] != rolls[-1]).float().sum((1, 2))
    return {
        "interpolation_pairs": int(len(a)),
        "interpolation_step_distance": round(float(consecutive.mean()), 2),
        "interpolation_ends_distance": round(float(ends.mean()), 2),
    }


@torch.no_grad()
def style_codes(
    model: SegmentVAE, segments: Segments, names: list[str], device, most: int = 2000
) -> dict:
    """The mean posterior code of each style's training segments (untransposed)."""
    codes = {}
    rng = np.random.default_rng(0)
    for index, name in enumerate(names):
        members = np.flatnonzero(segments.style == index)
        if len(members) == 0:
            continue
        members = np.sort(rng.choice(members, min(most, len(members)), replace=False))
        _, mu, _ = _encode_all(model, segments, members, device)
        codes[name] = [round(float(v), 5) for v in mu.mean(0)]
    return codes


def finish(out: Path, config: VAETrainConfig, device) -> dict:
    """Held-out figures of the best checkpoint (test split), and the style codes, written into
    it and into metrics.json."""
    checkpoint = load_checkpoint(out / "best.pt")
    model = model_from_checkpoint(checkpoint).to(device)
    figures = held_out_figures(model, _segments(config, "test"), device)
    pieces, styles, names = load_pieces(config.cache, "train")
    checkpoint["style_codes"] = style_codes(
        model, make_segments(pieces, styles, config.model.grid), names, device
    )
    checkpoint["metrics"] = {
        "steps": checkpoint["step"],
        "valid_loss": checkpoint["valid_loss"],
        **figures,
    }
    checkpoint.pop("optimizer", None)  # best.pt is what export reads; keep it small
    save_checkpoint(checkpoint, out / "best.pt")
    write_json(out / "metrics.json", checkpoint["metrics"])
    print(
        f"best step {checkpoint['step']}: recon {figures['recon_nll']:.2f} nats/segment, step "
        f"accuracy {figures['step_accuracy_teacher_forced']:.3f} (teacher-forced) / "
        f"{figures['step_accuracy_sampled']:.3f} (sampled), KL {figures['kl']:.1f} in "
        f"{figures['active_dims']} active dims; "
        f"continuation NLL {figures['continuation_nll']:.1f} vs "
        f"{figures['continuation_nll_shuffled']:.1f} shuffled -> {out / 'best.pt'}"
    )
    return checkpoint["metrics"]
