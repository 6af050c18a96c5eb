"""One codebook of the codec's residual quantiser, learned by exponential moving average.

Its vectors start as the k-means centres of the first training batch, follow the EMA of the
latents assigned to them (not the gradient), and a code that falls out of use is restarted
on a latent of the batch. Under DDP the statistics are all-reduced and the restarts
broadcast, so that every rank keeps the same codebook.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def kmeans(vectors: torch.Tensor, k: int, iters: int) -> torch.Tensor:
    """(k, D) centres by Lloyd's algorithm from a k-means++ start (each next seed drawn
    with probability growing as the squared distance to the seeds so far, so two seeds
    rarely share a cluster). An empty cluster keeps its centre."""
    centres = vectors[torch.randint(len(vectors), (1,), device=vectors.device)]
    nearest = torch.cdist(vectors, centres).squeeze(1) ** 2
    for _ in range(1, k):
        weights = nearest if nearest.sum() > 0 else torch.ones_like(nearest)
        pick = vectors[torch.multinomial(weights, 1)]
        centres = torch.cat([centres, pick])
        nearest = torch.minimum(nearest, torch.cdist(vectors, pick).squeeze(1) ** 2)
    for _ in range(iters):
        assign = torch.cdist(vectors, centres).argmin(dim=1)
        counts = torch.bincount(assign, minlength=k).to(vectors.dtype)
        sums = torch.zeros_like(centres).index_add_(0, assign, vectors)
        filled = counts > 0
        centres[filled] = sums[filled] / counts[filled, None]
    return centres


class EMACodebook(nn.Module):
    """One codebook of `size` vectors of `dim`, learned by EMA of its assigned vectors."""

    def __init__(self, dim: int, size: int, decay: float, kmeans_iters: int, dead_below: float):
        super().__init__()
        self.size, self.decay, self.kmeans_iters = size, decay, kmeans_iters
        self.dead_below = dead_below
        self.register_buffer("initialised", torch.tensor(False))
        self.register_buffer("embed", torch.zeros(size, dim))
        self.register_buffer("cluster_size", torch.zeros(size))
        self.register_buffer("embed_sum", torch.zeros(size, dim))

    def assign(self, vectors: torch.Tensor) -> torch.Tensor:
        """(M, D) -> (M,) index of the nearest code. Squared distances written out rather
        than torch.cdist: they export to plain ONNX ops, and |x|^2 is the same for every
        code, so it is left out."""
        scores = (self.embed * self.embed).sum(dim=1) - 2 * vectors @ self.embed.t()
        return scores.argmin(dim=1)

    @torch.no_grad()
    def update(self, vectors: torch.Tensor, codes: torch.Tensor) -> None:
        """One EMA step on a training batch's (M, D) vectors and their codes, then restart
        the dead codes. Under DistributedDataParallel the statistics are summed over ranks,
        so every rank keeps the same codebook."""
        if not bool(self.initialised):
            self.embed.copy_(kmeans(_gathered(vectors), self.size, self.kmeans_iters))
            self.cluster_size.fill_(1.0)
            self.embed_sum.copy_(self.embed)
            self.initialised.fill_(True)
            codes = self.assign(vectors)
        onehot = F.one_hot(codes, self.size).to(vectors.dtype)
        counts, sums = _all_reduced(onehot.sum(0)), _all_reduced(onehot.t() @ vectors)
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.embed_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        # Laplace smoothing: a code with a tiny count is not divided by almost nothing.
        total = self.cluster_size.sum()
        smoothed = (self.cluster_size + 1e-5) / (total + self.size * 1e-5) * total
        self.embed.copy_(self.embed_sum / smoothed[:, None])
        self.restart_dead(vectors)

    @torch.no_grad()
    def restart_dead(self, vectors: torch.Tensor) -> int:
        """Move every code used less than `dead_below` times per batch (by its EMA count)
        onto a random vector of this batch; returns how many were restarted."""
        dead = self.cluster_size < self.dead_below
        n = int(dead.sum())
        if n == 0:
            return 0
        pool = _gathered(vectors)
        picks = torch.randint(len(pool), (n,), device=pool.device)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.broadcast(picks, 0)  # the same restarts on every rank
        self.embed[dead] = pool[picks]
        self.cluster_size[dead] = self.dead_below
        self.embed_sum[dead] = pool[picks] * self.dead_below
        return n


def _all_reduced(x: torch.Tensor) -> torch.Tensor:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.all_reduce(x)
    return x


def _gathered(vectors: torch.Tensor) -> torch.Tensor:
    """This rank's vectors, or every rank's under DDP (rank 0's would do for k-means, but
    then the ranks would differ: they all see the same pool this way)."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return vectors
    parts = [torch.empty_like(vectors) for _ in range(torch.distributed.get_world_size())]
    torch.distributed.all_gather(parts, vectors.contiguous())
    return torch.cat(parts)
