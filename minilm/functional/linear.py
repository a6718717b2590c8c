"""Linear: out = x @ W^T + b, with any leading batch axes, as torch.nn.functional.linear."""
from __future__ import annotations

import numpy as np

from ..autograd.function import Function
from ..errors import ShapeError


class LinearFn(Function):
    name = "linear"
    formula = "dx = g @ W ; dW = g^T @ x (summed over batch axes) ; db = sum(g over batch axes)"

    @staticmethod
    def forward(ctx, x, weight, bias=None):
        # x (..., in), weight (out, in), bias (out,) -> out (..., out)
        if x.shape[-1] != weight.shape[1]:
            raise ShapeError(f"linear: x must be (..., {weight.shape[1]}) for weight (out, in) = {weight.shape}; "
                             f"got x{x.shape}")
        x2 = x.reshape(-1, x.shape[-1])                                  # (N, in)
        out = x2 @ weight.T                                              # (N, out)
        if bias is not None:
            out += bias
        ctx.save_for_backward(x2, weight)
        ctx.x_shape = x.shape
        return out.reshape(*x.shape[:-1], weight.shape[0])

    @staticmethod
    def backward(ctx, g):
        x2, weight = ctx.saved
        need_x, need_w, need_b = (ctx.needs_input_grad + (False,))[:3]
        g2 = g.reshape(-1, weight.shape[0])                              # (N, out)
        dx = (g2 @ weight).reshape(ctx.x_shape) if need_x else None      # (..., in)
        dw = g2.T @ x2 if need_w else None                               # (out, in)
        db = g2.sum(axis=0) if need_b else None                          # (out,)
        return dx, dw, db


def linear(x, weight, bias=None):
    return LinearFn.apply(x, weight, bias) if bias is not None else LinearFn.apply(x, weight)
