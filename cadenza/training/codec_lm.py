"""The codec language model of the codec-lm plugin: a transformer over codebook patterns
(MusicGen, Copet et al. 2023), conditioned on a sentence embedding of the text prompt.

A step of the pattern sequence holds K tokens, one per codebook (a code, or the pattern's
special token where it places none, see cadenza/plugins/codebook_patterns.py). The input
at a step is the sum of K token embeddings; the output is K heads of codebook logits. The
text prompt's sentence embedding (all-MiniLM-L6-v2, 384-d) is projected to one vector put
*before* the first step (audiocraft's "prepend" fuser), so it sits at position 0 and
the host's KV cache holds it in slot 0 for good while the codes slide through the other
slots (as the Music Transformer's style token: see cadenza/plugins/transformer.py).
The unconditional model of classifier-free guidance is the same network given a zero
embedding, which training shows it with probability `condition_dropout`.

Position s of the network's input predicts step s: position 0 is the condition, position
s > 0 is step s - 1's tokens. Attention is the Music Transformer's relative attention
(cadenza/training/transformer.py's blocks, reused), so a window that slides looks like any
other; distances past `max_distance` share its last embedding, which is why it is set a
little below the training window: every distance the live model meets is one it trained on.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from cadenza.plugins.codebook_patterns import DEFAULT_PATTERN
from cadenza.training.config import TransformerConfig
from cadenza.training.transformer import Block

TEXT_DIM = 384  # all-MiniLM-L6-v2


@dataclass
class CodecLMConfig:
    num_codebooks: int = 4
    codebook_size: int = 1024
    pattern: str = DEFAULT_PATTERN
    text_dim: int = TEXT_DIM
    d_model: int = 128
    num_layers: int = 4
    num_heads: int = 4
    d_ff: int = 512
    max_distance: int = 192
    dropout: float = 0.1

    @property
    def special(self) -> int:
        """The token where the pattern places no code; also what step 0's past reads."""
        return self.codebook_size

    def block_config(self) -> TransformerConfig:
        return TransformerConfig(
            d_model=self.d_model,
            num_layers=self.num_layers,
            num_heads=self.num_heads,
            d_ff=self.d_ff,
            max_distance=self.max_distance,
            dropout=self.dropout,
        )


class CodecLM(nn.Module):
    def __init__(self, config: CodecLMConfig):
        super().__init__()
        if config.d_model % config.num_heads:
            raise ValueError("d_model must be a multiple of num_heads")
        self.config = config
        d, card = config.d_model, config.codebook_size
        self.embeds = nn.ModuleList(nn.Embedding(card + 1, d) for _ in range(config.num_codebooks))
        self.condition = nn.Linear(config.text_dim, d)
        self.drop = nn.Dropout(config.dropout)
        blocks = config.block_config()
        self.blocks = nn.ModuleList(Block(blocks) for _ in range(config.num_layers))
        self.norm = nn.LayerNorm(d)
        self.heads = nn.ModuleList(nn.Linear(d, card) for _ in range(config.num_codebooks))
        for name, parameter in self.named_parameters():
            if parameter.dim() == 2 and "embeds" not in name:
                nn.init.xavier_uniform_(parameter)
            elif name.endswith("bias"):
                nn.init.zeros_(parameter)

    def embed_step(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, K, T) tokens -> (B, T, D): the sum of the K codebooks' embeddings."""
        return sum(embed(tokens[:, k]) for k, embed in enumerate(self.embeds))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, D) hidden states -> (B, K, T, card)."""
        x = self.norm(x)
        return torch.stack([head(x) for head in self.heads], dim=1)

    def forward(self, seq: torch.Tensor, text: torch.Tensor):
        """seq (B, K, S) pattern steps, text (B, text_dim) -> logits (B, K, S, card) where
        [.., s, :] predicts step s from the text and steps < s; and per-layer (k, v)."""
        inputs = self.embed_step(seq[:, :, :-1])
        x = torch.cat([self.condition(text).unsqueeze(1), inputs], dim=1)
        x = self.drop(x)
        cache = []
        for block in self.blocks:
            x, k, v = block(x)
            cache.append((k, v))
        return self.logits(x), cache


def pattern_loss(logits: torch.Tensor, seq: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(K,) mean cross-entropy per codebook over the steps where the pattern holds a code
    (`mask` (B, K, S) True); the special tokens are never targets."""
    card = logits.shape[-1]
    per_token = F.cross_entropy(
        logits.reshape(-1, card), seq.clamp(max=card - 1).reshape(-1), reduction="none"
    ).view(seq.shape)
    weights = mask.to(per_token.dtype)
    return (per_token * weights).sum(dim=(0, 2)) / weights.sum(dim=(0, 2)).clamp(min=1)


# -------- the graph of the bundle -------------------------------------------------------------
class CodecLMStep(nn.Module):
    """One position against the host's cache: (tokens (1, K), text (1, text_dim), position (1,),
    cache_k, cache_v (layers, H, C, Dh), cache_positions (C,), -1 where empty) -> (logits
    (1, K, card) of the next step, new_k, new_v (layers, H, Dh)) for the host to write into a
    slot. Position 0 is the condition: the text's projection, not the tokens, goes in there
    (one graph for both, so the bundle carries the blocks once)."""

    def __init__(self, model: CodecLM):
        super().__init__()
        self.model = model

    def forward(self, tokens, text, position, cache_k, cache_v, cache_positions):
        distance = position - cache_positions
        valid = cache_positions >= 0
        condition = self.model.condition(text).unsqueeze(1)
        codes = self.model.embed_step(tokens.view(1, -1, 1))
        x = torch.where(position.view(1, 1, 1) == 0, condition, codes)
        keys, values = [], []
        for layer, block in enumerate(self.model.blocks):
            x, k, v = block.step(x, cache_k[layer], cache_v[layer], distance, valid)
            keys.append(k)
            values.append(v)
        return self.model.logits(x)[:, :, -1], torch.stack(keys), torch.stack(values)
