"""Magenta's Melody RNN family in one torch model: basic, lookback and attention.

The inputs are the dense vectors of `cadenza.melody` (computed on the host in numpy, by the
trainer and by the runtime plugin alike), into an LSTM stack (Magenta's 2x128 with dropout
0.5), a linear head over the variant's outputs (38 events; lookback adds its two "repeat"
labels). The attention variant is tf.contrib's AttentionCellWrapper as Magenta's
attention_rnn uses it: each step's input is projected together with the previous attention
vector, and after the LSTM the output attends over the last `attention_length` outputs
(Bahdanau scoring); the output and the attention vector are projected back to the hidden
size. Its state is the LSTM's (h, c), the attention vector and the window of outputs, all
outside the graph, so one ONNX step graph serves every variant.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from cadenza.melody import ATTENTION_LENGTH, VARIANTS, MelodyEncoding

State = tuple[torch.Tensor, ...]  # h, c (and for attention: the attention vector, the window)


@dataclass
class MelodyModelConfig:
    variant: str = "lookback"  # basic | lookback | attention
    hidden_size: int = 128
    num_layers: int = 2
    dropout: float = 0.5  # Magenta's dropout_keep_prob 0.5
    attention_length: int = ATTENTION_LENGTH


class MelodyRNN(nn.Module):
    def __init__(self, config: MelodyModelConfig, encoding: MelodyEncoding | None = None):
        super().__init__()
        if config.variant not in VARIANTS:
            raise ValueError(f"unknown variant {config.variant!r} (known: {', '.join(VARIANTS)})")
        self.config = config
        self.encoding = encoding or MelodyEncoding()
        self.input_size = self.encoding.input_size(config.variant)
        self.output_size = self.encoding.output_size(config.variant)
        hidden = config.hidden_size
        self.attends = config.variant == "attention"
        if self.attends:
            self.project_in = nn.Linear(self.input_size + hidden, self.input_size)
            self.keys = nn.Linear(hidden, hidden, bias=False)
            self.query = nn.Linear(hidden, hidden)
            self.score = nn.Parameter(torch.randn(hidden) / hidden**0.5)
            self.project_out = nn.Linear(2 * hidden, hidden)
        self.lstm = nn.LSTM(self.input_size, hidden, num_layers=config.num_layers,
                            dropout=config.dropout if config.num_layers > 1 else 0.0,
                            batch_first=True)
        self.drop = nn.Dropout(config.dropout)
        self.head = nn.Linear(hidden, self.output_size)

    def initial_state(self, batch: int, device: torch.device | str = "cpu") -> State:
        c = self.config
        shape = (c.num_layers, batch, c.hidden_size)
        state = [torch.zeros(shape, device=device), torch.zeros(shape, device=device)]
        if self.attends:
            state.append(torch.zeros(batch, c.hidden_size, device=device))
            state.append(torch.zeros(batch, c.attention_length, c.hidden_size, device=device))
        return tuple(state)

    def forward(self, inputs: torch.Tensor, state: State | None = None
                ) -> tuple[torch.Tensor, State]:
        """inputs (B, T, input_size) -> logits (B, T, output_size), the state after them."""
        if not self.attends:
            out, (h, c) = self.lstm(inputs, None if state is None else state[:2])
            return self.head(self.drop(out)), (h, c)
        state = state or self.initial_state(inputs.size(0), inputs.device)
        outputs = []
        for t in range(inputs.size(1)):
            output, state = self.attend_step(inputs[:, t], state)
            outputs.append(output)
        return self.head(self.drop(torch.stack(outputs, dim=1))), state

    def attend_step(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """One step of the attention cell: x (B, input_size) -> output (B, hidden)."""
        h, c, attention, window = state
        projected = self.project_in(torch.cat([x, attention], dim=-1))
        out, (h, c) = self.lstm(projected[:, None], (h, c))
        out = out[:, 0]
        scores = (self.score * torch.tanh(self.keys(window) + self.query(out)[:, None])).sum(-1)
        weights = torch.softmax(scores, dim=-1)
        attention = (weights[..., None] * window).sum(1)
        window = torch.cat([window[:, 1:], out[:, None]], dim=1)
        output = self.project_out(torch.cat([out, attention], dim=-1))
        return output, (h, c, attention, window)


class MelodyRNNStep(nn.Module):
    """One step with the state outside the graph: (inputs, *state) -> (logits, *state).
    This is the graph a bundle ships; the plugin keeps the state in numpy between calls."""

    def __init__(self, model: MelodyRNN):
        super().__init__()
        self.model = model

    def forward(self, inputs: torch.Tensor, *state: torch.Tensor):
        logits, new_state = self.model(inputs.view(1, 1, -1), tuple(state))
        return (logits[:, -1, :], *new_state)
