"""GPT: a decoder-only causal language model (as GPT-2, at toy sizes).

    ids (B, T) -> token embedding + learned position embedding (B, T, C)
               -> n_layers x pre-LN TransformerBlock with causal self-attention
               -> final LayerNorm -> logits = x @ E^T (B, T, V), the head tied to the token embedding

Generation runs incrementally with a KV cache: `start(prompt)` fills the cache, `advance(token)`
feeds one token (Nq = 1 against Nk = t keys; bottom-right causal alignment makes that exact).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import nn
from ..errors import MinilmError, ShapeError


@dataclass
class GPTConfig:
    vocab_size: int
    context: int = 128
    d_model: int = 192
    n_heads: int = 4
    n_layers: int = 4
    d_ff: int | None = None            # default 4 * d_model
    dropout: float = 0.0
    backend: str = "reference"
    seed: int = 0

    @property
    def hidden(self) -> int:
        return self.d_ff or 4 * self.d_model


class GPT(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        rng = np.random.default_rng(config.seed)
        nn.set_init_seed(config.seed)
        c = config
        self.token_embedding = nn.Embedding(c.vocab_size, c.d_model)
        self.position_embedding = nn.Embedding(c.context, c.d_model)
        self.drop = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList([
            nn.TransformerBlock(c.d_model, c.n_heads, c.hidden, dropout=c.dropout, causal=True, backend=c.backend)
            for _ in range(c.n_layers)])
        self.ln_f = nn.LayerNorm(c.d_model)
        self._init_weights(rng)

    def _init_weights(self, rng):
        """GPT-2's init: N(0, 0.02) weights, zero biases; residual output projections / sqrt(2 L)."""
        for name, p in self.named_parameters():
            if p.ndim >= 2:
                std = 0.02 / math.sqrt(2 * self.config.n_layers) if name.endswith(("out_proj.weight", "fc2.weight")) \
                    else 0.02
                p.data[...] = rng.normal(0.0, std, size=p.shape).astype(p.dtype)
            elif "ln" in name or "norm" in name:
                continue
            else:
                p.data[...] = 0.0

    def forward(self, ids, kv_cache=None):
        """ids (B, T) int -> logits (B, T, V)."""
        ids = np.asarray(getattr(ids, "data", ids))
        if ids.ndim != 2:
            raise ShapeError(f"GPT: ids must be (B, T); got shape {ids.shape}")
        batch, length = ids.shape
        start = kv_cache.length if kv_cache is not None else 0
        if start + length > self.config.context:
            raise ShapeError(f"GPT: {start + length} positions exceed the context of {self.config.context}")
        positions = np.arange(start, start + length)
        x = self.drop(self.token_embedding(ids) + self.position_embedding(positions))     # (B, T, C)
        for i, block in enumerate(self.blocks):
            x = block(x, kv_cache=None if kv_cache is None else kv_cache.layer(i))
        x = self.ln_f(x)                                                                    # (B, T, C)
        logits = x.reshape(batch * length, -1) @ self.token_embedding.weight.T             # (B*T, V)
        return logits.reshape(batch, length, self.config.vocab_size)

    # ----- incremental generation (minilm.generate drives these) ---------------------------
    def start(self, prompt_ids: np.ndarray):
        """Run the prompt, filling a fresh KV cache; return (logits of the last position, state)."""
        tokens = [int(t) for t in prompt_ids[-self.config.context:]]
        cache = nn.KVCache(self.config.n_layers)
        logits = self(np.array([tokens]), kv_cache=cache)
        return logits.data[0, -1], {"cache": cache, "tokens": tokens}

    def advance(self, token: int, state):
        """Feed one token through the cache. When the context is full, restart from its last half."""
        state["tokens"].append(int(token))
        if state["cache"].length >= self.config.context:
            return self.start(np.array(state["tokens"][-(self.config.context // 2):]))
        logits = self(np.array([[token]]), kv_cache=state["cache"])
        return logits.data[0, -1], state
