"""LSTMLM: the classic LSTM language model.

    ids (B, T) -> embedding (B, T, E) -> dropout -> LSTM (B, T, H) -> dropout -> linear head (B, T, V)

Generation carries the LSTM state (h, c) from token to token: no context limit.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import nn
from ..errors import ShapeError


@dataclass
class LSTMConfig:
    vocab_size: int
    context: int = 64                  # training window (the model itself has no limit)
    embed_dim: int = 128
    hidden_size: int = 384
    num_layers: int = 1
    dropout: float = 0.0
    seed: int = 0


class LSTMLM(nn.Module):
    def __init__(self, config: LSTMConfig):
        super().__init__()
        self.config = config
        c = config
        nn.set_init_seed(config.seed)
        self.embedding = nn.Embedding(c.vocab_size, c.embed_dim)
        self.drop = nn.Dropout(c.dropout)
        self.lstm = nn.LSTM(c.embed_dim, c.hidden_size, num_layers=c.num_layers, batch_first=True)
        self.head = nn.Linear(c.hidden_size, c.vocab_size)

    def forward(self, ids, state=None, return_state=False):
        """ids (B, T) int -> logits (B, T, V) [, (h_n, c_n)]."""
        ids = np.asarray(getattr(ids, "data", ids))
        if ids.ndim != 2:
            raise ShapeError(f"LSTMLM: ids must be (B, T); got shape {ids.shape}")
        x = self.drop(self.embedding(ids))                             # (B, T, E)
        out, new_state = self.lstm(x, state)                           # (B, T, H)
        logits = self.head(self.drop(out))                             # (B, T, V)
        return (logits, new_state) if return_state else logits

    def start(self, prompt_ids: np.ndarray):
        logits, state = self(np.asarray(prompt_ids)[None, :], return_state=True)
        return logits.data[0, -1], state

    def advance(self, token: int, state):
        logits, state = self(np.array([[token]]), state=state, return_state=True)
        return logits.data[0, -1], state
