"""Basic layers: Linear, Embedding, LayerNorm, Dropout, positional encodings, FeedForward."""
from __future__ import annotations

import math

import numpy as np

from .. import functional as F
from ..errors import ShapeError
from .module import Module, Parameter

_init_rng = np.random.default_rng(0)


def set_init_seed(seed: int) -> None:
    """Seed the generator that initialises new layers (models call it for reproducible weights)."""
    global _init_rng
    _init_rng = np.random.default_rng(seed)


def _uniform(bound: float, shape) -> np.ndarray:
    return _init_rng.uniform(-bound, bound, size=shape).astype(np.float32)


class Linear(Module):
    """y = x @ W^T + b; weight (out, in), bias (out,); torch's init U(-1/sqrt(in), 1/sqrt(in))."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        bound = 1.0 / math.sqrt(in_features)
        self.weight = Parameter(_uniform(bound, (out_features, in_features)))
        self.bias = Parameter(_uniform(bound, (out_features,))) if bias else None

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Embedding(Module):
    """out[..., :] = weight[ids[...]]; weight (num_embeddings, dim) ~ N(0, 1) as torch."""

    def __init__(self, num_embeddings: int, dim: int, padding_idx: int | None = None):
        super().__init__()
        self.num_embeddings, self.dim, self.padding_idx = num_embeddings, dim, padding_idx
        weight = _init_rng.standard_normal((num_embeddings, dim)).astype(np.float32)
        if padding_idx is not None:
            if not 0 <= padding_idx < num_embeddings:
                raise ShapeError(f"Embedding: padding_idx must be in [0, {num_embeddings}); got {padding_idx}")
            weight[padding_idx] = 0.0
        self.weight = Parameter(weight)

    def forward(self, ids):
        return F.embedding(ids, self.weight, self.padding_idx)

    def extra_repr(self):
        return f"{self.num_embeddings}, {self.dim}" + (f", padding_idx={self.padding_idx}" if self.padding_idx is not None else "")


class LayerNorm(Module):
    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.dim, self.eps = dim, eps
        self.weight = Parameter(np.ones(dim, np.float32))
        self.bias = Parameter(np.zeros(dim, np.float32))

    def forward(self, x):
        return F.layer_norm(x, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return f"{self.dim}, eps={self.eps}"


class Dropout(Module):
    """Zeroes each element with probability p in training (seeded generator); identity in eval."""

    def __init__(self, p: float = 0.1, seed: int | None = None):
        super().__init__()
        self.p = p
        self.rng = np.random.default_rng(int(_init_rng.integers(2**31)) if seed is None else seed)

    def forward(self, x):
        return F.dropout(x, self.p, self.training, self.rng)

    def extra_repr(self):
        return f"p={self.p}"


def sinusoidal_table(length: int, dim: int) -> np.ndarray:
    """PE[pos, 2i] = sin(pos / 10000^(2i/dim)), PE[pos, 2i+1] = cos(...)  (Vaswani et al.)."""
    positions = np.arange(length)[:, None]
    rates = np.exp(-math.log(10000.0) * np.arange(0, dim, 2) / dim)
    table = np.zeros((length, dim))
    table[:, 0::2] = np.sin(positions * rates)
    table[:, 1::2] = np.cos(positions * rates[: dim // 2])
    return table.astype(np.float32)


class SinusoidalPositionalEncoding(Module):
    """Fixed (not trained) sin/cos positions: forward(positions) -> (T, dim)."""

    _buffers = ("table",)

    def __init__(self, max_len: int, dim: int):
        super().__init__()
        self.max_len, self.dim = max_len, dim
        self.table = sinusoidal_table(max_len, dim)

    def forward(self, positions):
        from ..autograd import Tensor
        positions = np.asarray(positions)
        if positions.size and positions.max() >= self.max_len:
            raise ShapeError(f"SinusoidalPositionalEncoding: position {positions.max()} >= max_len {self.max_len}")
        return Tensor(self.table[positions])


class LearnedPositionalEncoding(Embedding):
    """A trained table of positions: forward(positions) -> (T, dim)."""

    def __init__(self, max_len: int, dim: int):
        super().__init__(max_len, dim)


class FeedForward(Module):
    """x -> fc2(act(fc1(x))) with fc1: dim -> hidden, fc2: hidden -> dim; act = gelu or relu."""

    def __init__(self, dim: int, hidden: int, activation: str = "gelu", dropout: float = 0.0):
        super().__init__()
        if activation not in ("gelu", "gelu_tanh", "relu"):
            raise ValueError(f"FeedForward: activation must be 'gelu', 'gelu_tanh' or 'relu'; got {activation!r}")
        self.activation = activation
        self.fc1 = Linear(dim, hidden)
        self.fc2 = Linear(hidden, dim)
        self.drop = Dropout(dropout)

    def forward(self, x):
        h = self.fc1(x)
        h = h.relu() if self.activation == "relu" else h.gelu("tanh" if self.activation == "gelu_tanh" else "none")
        return self.drop(self.fc2(h))
