"""The Music Transformer: a decoder-only transformer with relative attention (Huang et al. 2018).

Every window starts with one conditioning token (a style, or "any"), then performance events.
Attention adds to each query-key score a learned embedding of their distance i - j, computed
with the paper's "skewing": Q·Eᵀ for the L distances is one (L x L) matmul, and a pad, a reshape
and a slice move entry (i, L-1-(i-j)) to (i, j), so memory is O(L·D) for the embeddings instead
of the O(L²·D) of gathering one embedding per pair. Pad/reshape/slice export to ONNX, unlike
as_strided.

`TransformerStep` is the live graph: one token against a key/value cache held by the host (slots
with the absolute position of what they hold, -1 when empty), returning the new token's keys and
values for the host to write in place, so no step copies the cache.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from cadenza.training.config import TransformerConfig


def skew(scores: torch.Tensor) -> torch.Tensor:
    """(..., L, L) with column c holding distance L-1-c -> (..., L, L) with [i, j] at i - j.

    Only j <= i is meaningful (the rest is masked by causality).
    """
    *lead, length, _ = scores.shape
    padded = F.pad(scores, (1, 0))  # (..., L, L+1)
    return padded.reshape(*lead, length + 1, length)[..., 1:, :]


class RelativeAttention(nn.Module):
    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.heads = config.num_heads
        self.head_dim = config.d_model // config.num_heads
        self.max_distance = config.max_distance
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model)
        self.out = nn.Linear(config.d_model, config.d_model)
        # One embedding per head per distance 0..max_distance-1 (Music Transformer's Er).
        shape = (self.heads, self.max_distance, self.head_dim)
        self.distance = nn.Parameter(torch.randn(shape) * 0.02)
        self.drop = nn.Dropout(config.dropout)

    def split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, T, D) -> q, k, v as (B, H, T, Dh)."""
        b, t, _ = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        return q, k, v

    def relative_scores(self, q: torch.Tensor) -> torch.Tensor:
        """Skewed Q·Eᵀ: (B, H, L, Dh) -> (B, H, L, L), [i, j] = q_i · E[i - j]."""
        length = q.size(-2)
        # Column c is distance L-1-c; distances past the table share its last row.
        columns = torch.arange(length - 1, -1, -1, device=q.device).clamp(max=self.max_distance - 1)
        return skew(q @ self.distance[:, columns].transpose(-1, -2))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Causal self-attention over (B, T, D); also returns k and v for a cache."""
        q, k, v = self.split(x)
        length = x.size(1)
        causal = torch.ones(length, length, dtype=torch.bool, device=x.device).triu(1)
        # The relative term and the causal mask go in as an additive mask, so that the fused
        # kernel does the rest (content scores, softmax, the weighted sum): the
        # (L x L) tensors are what a long window costs, and this makes fewer of them.
        bias = (self.relative_scores(q) / math.sqrt(self.head_dim)).masked_fill(causal, -math.inf)
        # No dropout on the attention weights: on a CPU it costs as much as the attention.
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        return self.drop(self.out(y.transpose(1, 2).reshape(x.shape))), k, v

    def step(
        self, x: torch.Tensor, cache_k: torch.Tensor, cache_v: torch.Tensor,
        distance: torch.Tensor, valid: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One token (1, 1, D) against cached keys/values (H, C, Dh) at `distance` (C,) from it.

        The token's own score (distance 0) is computed apart from the cache's and joined only in
        the softmax, so the cache is read, never copied.
        """
        q, k, v = (t[0, :, 0] for t in self.split(x))  # (H, Dh) each
        scale = 1.0 / math.sqrt(self.head_dim)
        by_distance = torch.einsum("hd,hrd->hr", q, self.distance)  # (H, R)
        index = distance.clamp(0, self.max_distance - 1).unsqueeze(0).expand(self.heads, -1)
        cached = (torch.einsum("hd,hcd->hc", q, cache_k) + by_distance.gather(1, index)) * scale
        cached = cached.masked_fill(~valid.unsqueeze(0), float("-inf"))
        own = ((q * k).sum(-1, keepdim=True) + by_distance[:, :1]) * scale  # (H, 1)
        weights = torch.cat([cached, own], dim=1).softmax(-1)
        y = torch.einsum("hc,hcd->hd", weights[:, :-1], cache_v) + weights[:, -1:] * v
        return self.out(y.reshape(1, 1, -1)), k, v


class Block(nn.Module):
    """Pre-layer-norm: x + attention(norm(x)), then x + feed-forward(norm(x))."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.norm1 = nn.LayerNorm(config.d_model)
        self.attention = RelativeAttention(config)
        self.norm2 = nn.LayerNorm(config.d_model)
        self.feed_forward = nn.Sequential(
            nn.Linear(config.d_model, config.d_ff),
            nn.GELU(),
            nn.Linear(config.d_ff, config.d_model),
            nn.Dropout(config.dropout),
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        attended, k, v = self.attention(self.norm1(x))
        x = x + attended
        return x + self.feed_forward(self.norm2(x)), k, v

    def step(self, x, cache_k, cache_v, distance, valid):
        attended, k, v = self.attention.step(self.norm1(x), cache_k, cache_v, distance, valid)
        x = x + attended
        return x + self.feed_forward(self.norm2(x)), k, v


class MusicTransformer(nn.Module):
    def __init__(self, config: TransformerConfig):
        super().__init__()
        if config.d_model % config.num_heads:
            raise ValueError("d_model must be a multiple of num_heads")
        self.config = config
        self.embed = nn.Embedding(config.vocab_size + len(config.styles), config.d_model)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.num_layers))
        self.norm = nn.LayerNorm(config.d_model)
        self.head = nn.Linear(config.d_model, config.vocab_size)
        for name, parameter in self.named_parameters():
            if parameter.dim() == 2 and "embed" not in name:
                nn.init.xavier_uniform_(parameter)
            elif name.endswith("bias"):
                nn.init.zeros_(parameter)

    def style_token(self, style: str | None) -> int:
        """The conditioning token of a style; None (or an unknown name) is "any"."""
        styles = self.config.styles
        return self.config.vocab_size + (styles.index(style) if style in styles else 0)

    def forward(
        self, tokens: torch.Tensor, state: None = None
    ) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
        """tokens (B, T), a conditioning token first -> logits (B, T, 388), per-layer (k, v)."""
        x = self.drop(self.embed(tokens))
        cache = []
        for block in self.blocks:
            x, k, v = block(x)
            cache.append((k, v))
        return self.head(self.norm(x)), cache


class TransformerPrefill(nn.Module):
    """The whole primer at once: tokens (1, T) -> last logits (1, 388), keys and values
    (layers, H, T, Dh) for the host's cache. The primer's positions are 0..T-1."""

    def __init__(self, model: MusicTransformer):
        super().__init__()
        self.model = model

    def forward(self, tokens: torch.Tensor):
        logits, cache = self.model(tokens)
        keys = torch.stack([k[0] for k, _ in cache])
        values = torch.stack([v[0] for _, v in cache])
        return logits[:, -1], keys, values


class TransformerStep(nn.Module):
    """One token against the host's cache: (token (1,), position (1,), cache_k, cache_v
    (layers, H, C, Dh), cache_positions (C,), -1 where empty) -> (logits (1, 388),
    new_k, new_v (layers, H, Dh)), which the host writes into a slot."""

    def __init__(self, model: MusicTransformer):
        super().__init__()
        self.model = model

    def forward(self, token, position, cache_k, cache_v, cache_positions):
        distance = position - cache_positions
        valid = cache_positions >= 0
        x = self.model.embed(token.view(1, 1))
        keys, values = [], []
        for layer, block in enumerate(self.model.blocks):
            x, k, v = block.step(x, cache_k[layer], cache_v[layer], distance, valid)
            keys.append(k)
            values.append(v)
        logits = self.model.head(self.model.norm(x))
        return logits[:, -1], torch.stack(keys), torch.stack(values)
