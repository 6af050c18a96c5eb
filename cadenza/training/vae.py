"""The segment VAE: MusicVAE's flat LSTM VAE over bar-aligned piano-roll segments, with a
latent transition model for continuation.

- Encoder: a bidirectional LSTM reads the segment's frames (onset, hold, velocity per pitch);
  its last forward and backward states give the posterior's mean and log-variance.
- Decoder: z sets the LSTM's initial state (through a tanh layer, as MusicVAE) and is fed again
  at every step beside the previous frame; each step predicts onset and hold logits and a
  velocity per pitch. Polyphony: every pitch is its own Bernoulli, sampled on the host.
- Continuation, a small model over successive latents: an MLP maps the code of a segment to
  a Gaussian over the code of the segment that follows it. It was chosen over a second,
  next-segment decoder because it shares the one decoder (a smaller bundle, the same latency
  for every mode), keeps `continue` in the same space as `variation` and `interpolate` (a
  continuation can be varied or bridged like any code), and its temperature means the same
  as theirs: how far from the predicted code to go. It learns to match the encoder's posterior
  of the true next segment (KL(q(z_next | x_next) || p(z_next | z_prev))) with the encoder held
  fixed (stop-gradient), so continuation training never bends the VAE's own latent space.

KL annealing (the KL weight rises linearly to `beta`) and free bits (each latent dimension's
KL counts as at least `free_bits` nats) keep the posterior from collapsing onto the prior.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cadenza.errors import ConfigError
from cadenza.pianoroll import Grid
from cadenza.training.settings import fill_settings, require_at_least_one

CHANNELS = 3  # onset, hold, velocity (cadenza.pianoroll)


@dataclass
class VAEModelConfig:
    steps_per_quarter: int = 4
    beats_per_bar: int = 4
    beat_unit: int = 4
    bars: int = 2
    min_pitch: int = 21
    max_pitch: int = 108
    encoder_hidden: int = 256
    latent: int = 64
    decoder_hidden: int = 256
    decoder_layers: int = 2
    transition_hidden: int = 256

    @property
    def grid(self) -> Grid:
        return Grid(
            self.steps_per_quarter,
            self.beats_per_bar,
            self.beat_unit,
            self.bars,
            self.min_pitch,
            self.max_pitch,
        )


@dataclass
class VAETrainConfig:
    kind: str = "vae"
    data: list[str] = field(default_factory=lambda: ["music21:bach"])  # sources, as corpus prepare
    cache: str = "data/vae/music21-bach"  # the pieces on the grid (.npy), built on first use
    max_pieces_per_source: int = 0  # 0: all
    jobs: int = 1  # processes that parse pieces for the cache
    out: str = "runs/vae"
    model: VAEModelConfig = field(default_factory=VAEModelConfig)
    batch_size: int = 64  # pairs of successive segments
    lr: float = 1e-3
    min_lr: float = 1e-5
    warmup_steps: int = 200
    max_steps: int = 6000  # (the loop's set_learning_rate reads these fields)
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    beta: float = 0.2  # the KL weight after annealing (MusicVAE's 2-bar models use 0.2)
    kl_anneal_steps: int = 2000
    free_bits: float = 0.1  # nats per latent dimension that cost nothing
    transition_weight: float = 1.0
    transpose: int = 3  # training pairs are transposed by -transpose..transpose semitones
    eval_every: int = 500
    eval_pairs: int = 512  # held-out pairs per validation
    seed: int = 1234
    device: str = "cpu"
    threads: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def load_vae_config(
    path: str | Path | None = None, overrides: list[str] | None = None
) -> VAETrainConfig:
    """Defaults, then the YAML file, then each `key=value` (dotted keys reach model.*)."""
    config = fill_settings(VAETrainConfig(), path, overrides, kind="vae")
    require_at_least_one(config, "batch_size", "max_steps", "eval_pairs")
    try:
        config.model.grid  # noqa: B018 (validates the grid)
    except ValueError as e:
        raise ConfigError("model", str(e)) from None
    if not config.data:
        raise ConfigError("data", "name at least one source")
    return config


class SegmentVAE(nn.Module):
    def __init__(self, config: VAEModelConfig):
        super().__init__()
        self.config = config
        grid = config.grid
        self.pitches, self.steps = grid.pitches, grid.segment_steps
        features = CHANNELS * self.pitches
        self.encoder = nn.LSTM(
            features, config.encoder_hidden, batch_first=True, bidirectional=True
        )
        self.posterior = nn.Linear(2 * config.encoder_hidden, 2 * config.latent)
        state = config.decoder_layers * config.decoder_hidden
        self.initial = nn.Linear(config.latent, 2 * state)
        self.decoder = nn.LSTM(
            features + config.latent, config.decoder_hidden, config.decoder_layers, batch_first=True
        )
        self.head = nn.Linear(config.decoder_hidden, features)
        # Start near the data's sparsity (most pitches are silent at most steps): an untrained
        # model is then quiet rather than a cluster of every pitch.
        with torch.no_grad():
            self.head.bias.view(CHANNELS, -1)[:2] = -4.0
        self.transition = nn.Sequential(
            nn.Linear(config.latent, config.transition_hidden),
            nn.GELU(),
            nn.Linear(config.transition_hidden, config.transition_hidden),
            nn.GELU(),
            nn.Linear(config.transition_hidden, 2 * config.latent),
        )

    # --- the pieces the export runs one by one ---------------------------------------------
    def encode(self, rolls: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, 3, P) rolls -> posterior mean and log-variance (B, latent)."""
        _, (h, _) = self.encoder(rolls.flatten(2))
        mu, logvar = self.posterior(torch.cat([h[0], h[1]], dim=-1)).chunk(2, dim=-1)
        return mu, logvar.clamp(-12.0, 8.0)

    def initial_state(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z -> the decoder's (h, c), each (layers, B, hidden)."""
        layers, hidden = self.config.decoder_layers, self.config.decoder_hidden
        hc = torch.tanh(self.initial(z)).view(-1, 2, layers, hidden).permute(1, 2, 0, 3)
        return hc[0].contiguous(), hc[1].contiguous()

    def decode(
        self, z: torch.Tensor, previous: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """previous frames (B, T, 3, P) -> logits (B, T, 3, P) (onset, hold, velocity)."""
        inputs = torch.cat(
            [previous.flatten(2), z.unsqueeze(1).expand(-1, previous.size(1), -1)], -1
        )
        out, state = self.decoder(inputs, state)
        return self.head(out).view(*previous.shape), state

    def next_code(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The transition: a code -> mean and log-variance of the next segment's code."""
        mu, logvar = self.transition(z).chunk(2, dim=-1)
        return mu, logvar.clamp(-12.0, 8.0)

    # --- training ---------------------------------------------------------------------------
    def teacher_forced(self, z: torch.Tensor, rolls: torch.Tensor) -> torch.Tensor:
        """Logits of every step given the true previous frames."""
        previous = F.pad(rolls, (0, 0, 0, 0, 1, 0))[:, :-1]
        return self.decode(z, previous, self.initial_state(z))[0]

    def forward(
        self,
        prev: torch.Tensor,
        nxt: torch.Tensor,
        beta: float,
        free_bits: float,
        transition_weight: float,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The loss of a batch of successive segment pairs, and its terms (per segment)."""
        rolls = torch.cat([prev, nxt])
        mu, logvar = self.encode(rolls)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        logits = self.teacher_forced(z, rolls)
        recon, velocity = reconstruction(logits, rolls)
        kl_dims = gaussian_kl(mu, logvar).mean(0)  # (latent,) batch means
        kl_cost = torch.clamp(kl_dims, min=free_bits).sum()
        # The transition matches the posterior of the true next segment from the previous
        # segment's code; neither code carries its gradient back into the encoder.
        b = len(prev)
        t_mu, t_logvar = self.next_code(mu[:b].detach())
        transition = (
            gaussian_kl(mu[b:].detach(), logvar[b:].detach(), t_mu, t_logvar).sum(-1).mean()
        )
        loss = recon.mean() + velocity.mean() + beta * kl_cost + transition_weight * transition
        return loss, {
            "recon": recon.mean().detach(),
            "kl": kl_dims.sum().detach(),
            "transition": transition.detach(),
        }


def reconstruction(logits: torch.Tensor, rolls: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per segment: the Bernoulli NLL of onsets and holds (nats), and the velocity error
    (squared, at the true onsets)."""
    nll = F.binary_cross_entropy_with_logits(logits[:, :, :2], rolls[:, :, :2], reduction="none")
    onsets = rolls[:, :, 0]
    velocity = (torch.sigmoid(logits[:, :, 2]) - rolls[:, :, 2]).square() * onsets
    return nll.sum((1, 2, 3)), velocity.sum((1, 2))


def gaussian_kl(
    mu: torch.Tensor,
    logvar: torch.Tensor,
    mu2: torch.Tensor | None = None,
    logvar2: torch.Tensor | None = None,
) -> torch.Tensor:
    """KL(N(mu, e^logvar) || N(mu2, e^logvar2)) per dimension; the standard normal by default."""
    if mu2 is None:
        return 0.5 * (mu.square() + logvar.exp() - 1.0 - logvar)
    return 0.5 * (logvar2 - logvar + (logvar.exp() + (mu - mu2).square()) / logvar2.exp() - 1.0)
