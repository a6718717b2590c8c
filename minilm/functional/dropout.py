"""Dropout (training only): out = x * mask / (1 - p), mask ~ Bernoulli(1 - p); dx = g * mask / (1 - p)."""
from __future__ import annotations

import numpy as np

from ..autograd.function import Function


class DropoutFn(Function):
    name = "dropout"
    formula = "dx = g * mask / (1 - p)"

    @staticmethod
    def forward(ctx, x, p=0.5, rng=None):
        keep = (rng.random(x.shape) >= p).astype(x.dtype) / x.dtype.type(1.0 - p)
        ctx.save_for_backward(keep)
        return x * keep

    @staticmethod
    def backward(ctx, g):
        return g * ctx.saved[0]


def dropout(x, p: float, training: bool = True, rng: np.random.Generator | int | None = None):
    """Zero each element with probability p and scale the rest by 1/(1-p); identity unless training.
    rng: a numpy Generator (advanced by each call), or an int seed (the same mask every call)."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout: p must be in [0, 1); got {p}")
    if not training or p == 0.0:
        return x
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)
    return DropoutFn.apply(x, p=p, rng=rng)
