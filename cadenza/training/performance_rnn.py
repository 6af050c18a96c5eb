"""The Performance RNN: an event LSTM over Magenta's 388-class performance vocabulary.

Magenta's model takes one-hot inputs into a 3x512 LSTM; an embedding is the same map with
fewer multiplications. The shipped default is smaller so that it trains on a laptop CPU
and steps in well under a millisecond.
"""

from __future__ import annotations

import torch
from torch import nn

from cadenza.training.config import ModelConfig

State = tuple[torch.Tensor, torch.Tensor]


class PerformanceRNN(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.embed_dim)
        self.lstm = nn.LSTM(
            config.embed_dim,
            config.hidden_size,
            num_layers=config.num_layers,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
            batch_first=True,
        )
        self.drop = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.hidden_size, config.vocab_size)

    def initial_state(self, batch: int, device: torch.device | str = "cpu") -> State:
        shape = (self.config.num_layers, batch, self.config.hidden_size)
        return torch.zeros(shape, device=device), torch.zeros(shape, device=device)

    def forward(
        self, tokens: torch.Tensor, state: State | None = None
    ) -> tuple[torch.Tensor, State]:
        """tokens (B, T) -> logits (B, T, V) and the state after the last token."""
        out, state = self.lstm(self.embed(tokens), state)
        return self.head(self.drop(out)), state


class PerformanceRNNStep(nn.Module):
    """One step with the state outside the graph: (token, h, c) -> (logits, h, c).

    This is the graph the bundle ships; the plugin keeps h and c in numpy between calls.
    """

    def __init__(self, model: PerformanceRNN):
        super().__init__()
        self.model = model

    def forward(self, token: torch.Tensor, h: torch.Tensor, c: torch.Tensor):
        logits, (h, c) = self.model(token.view(-1, 1), (h, c))
        return logits[:, -1, :], h, c
