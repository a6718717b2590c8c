"""LoRA linear: a frozen base layer plus a trained low-rank update (Hu et al., 2021).

    y = x W^T + b + s * (drop(x) A^T) B^T          A (r, in), B (out, r), s = alpha / r
Backward, with u = drop(x) A^T (N, r) and gB = g B (N, r):
    dB = s * g^T u                 (out, r)
    dA = s * gB^T drop(x)          (r, in)
    dx = g W + s * dropmask * (gB A)
    dW = g^T x, db = sum(g)        only when the base requires grad (frozen: nothing computed or stored)
"""
from __future__ import annotations

import numpy as np

from ..autograd.function import Function
from ..errors import ShapeError


class LoRALinearFn(Function):
    name = "lora_linear"
    formula = "dB = s g^T (drop(x) A^T) ; dA = s (g B)^T drop(x) ; dx = g W + s mask (g B) A ; dW = g^T x (unfrozen)"

    @staticmethod
    def forward(ctx, x, weight, bias, lora_a, lora_b, scaling=1.0, dropout_p=0.0, rng=None):
        # x (..., in), weight (out, in), bias (out,) or None, lora_a (r, in), lora_b (out, r)
        if x.shape[-1] != weight.shape[1]:
            raise ShapeError(f"lora_linear: x must be (..., {weight.shape[1]}); got {x.shape}")
        x2 = x.reshape(-1, x.shape[-1])                                       # (N, in)
        keep = None
        xd = x2
        if dropout_p > 0.0:
            keep = (rng.random(x2.shape) >= dropout_p).astype(x2.dtype) / x2.dtype.type(1.0 - dropout_p)
            xd = x2 * keep
        u = xd @ lora_a.T                                                     # (N, r)
        out = x2 @ weight.T + scaling * (u @ lora_b.T)                        # (N, out)
        if bias is not None:
            out += bias
        ctx.save_for_backward(x2, xd, u, weight, lora_a, lora_b, keep)
        ctx.scaling, ctx.x_shape, ctx.has_bias = scaling, x.shape, bias is not None
        return out.reshape(*x.shape[:-1], weight.shape[0])

    @staticmethod
    def backward(ctx, g):
        x2, xd, u, weight, lora_a, lora_b, keep = ctx.saved
        need_x, need_w, need_b, need_a, need_lb = ctx.needs_input_grad
        s = ctx.scaling
        g2 = g.reshape(-1, weight.shape[0])                                   # (N, out)
        gb = g2 @ lora_b                                                      # (N, r)
        d_lora_b = s * (g2.T @ u) if need_lb else None                        # (out, r)
        d_lora_a = s * (gb.T @ xd) if need_a else None                        # (r, in)
        dx = None
        if need_x:
            lora_path = s * (gb @ lora_a)                                     # (N, in)
            if keep is not None:
                lora_path *= keep
            dx = (g2 @ weight + lora_path).reshape(ctx.x_shape)
        dw = g2.T @ x2 if need_w else None
        db = g2.sum(axis=0) if (need_b and ctx.has_bias) else None
        return dx, dw, db, d_lora_a, d_lora_b


def lora_linear(x, weight, bias, lora_a, lora_b, scaling: float, dropout_p: float = 0.0, rng=None,
                training: bool = True):
    p = dropout_p if training else 0.0
    return LoRALinearFn.apply(x, weight, bias, lora_a, lora_b, scaling=scaling, dropout_p=p, rng=rng)
