"""LayerNorm over the last axis: y = (x - mean) / sqrt(var + eps) * w + b.

Backward (per row of C features; xhat = (x - mean) * rstd, rstd = 1/sqrt(var + eps)):
    dxhat = g * w
    dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
    dw = sum over rows of g * xhat ;  db = sum over rows of g
"""
from __future__ import annotations

import numpy as np

from ..autograd.function import Function
from ..errors import ShapeError


class LayerNormFn(Function):
    name = "layer_norm"
    formula = "dx = rstd * (g*w - mean(g*w) - xhat * mean(g*w * xhat)) ; dw = sum(g * xhat) ; db = sum(g)"

    @staticmethod
    def forward(ctx, x, weight, bias, eps=1e-5):
        # x (..., C), weight (C,), bias (C,)
        if x.shape[-1] != weight.shape[0]:
            raise ShapeError(f"layer_norm: x must be (..., {weight.shape[0]}); got x{x.shape}")
        mean = x.mean(axis=-1, keepdims=True)                            # (..., 1)
        centered = x - mean
        var = np.mean(centered * centered, axis=-1, keepdims=True)       # (..., 1)
        rstd = 1.0 / np.sqrt(var + eps)
        xhat = centered * rstd                                           # (..., C)
        ctx.save_for_backward(xhat, rstd, weight)
        return xhat * weight + bias

    @staticmethod
    def backward(ctx, g):
        xhat, rstd, weight = ctx.saved
        need_x, need_w, need_b = ctx.needs_input_grad
        dx = dw = db = None
        if need_x:
            dxhat = g * weight                                           # (..., C)
            dx = rstd * (dxhat - dxhat.mean(axis=-1, keepdims=True)
                         - xhat * np.mean(dxhat * xhat, axis=-1, keepdims=True))
        lead = tuple(range(g.ndim - 1))
        if need_w:
            dw = np.sum(g * xhat, axis=lead)                             # (C,)
        if need_b:
            db = np.sum(g, axis=lead)                                    # (C,)
        return dx, dw, db


def layer_norm(x, weight, bias, eps: float = 1e-5):
    return LayerNormFn.apply(x, weight, bias, eps=eps)
