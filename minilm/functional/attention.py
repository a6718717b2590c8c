"""Scaled dot-product attention through the kernels package (reference, numba or triton).

q (B, H, Nq, D), k and v (B, Hkv, Nk, D) -> out (B, H, Nq, D). The forward keeps lse (B, H, Nq),
the per-row log-sum-exp, so the backward recomputes the probabilities instead of storing them:
    P = exp(scale * q k^T - lse);  dv = P^T dout;  dS = P * (dout v^T - rowsum(dout * out))
    dq = scale * dS k;  dk = scale * dS^T q            (kernels/reference.py has the derivation)
"""
from __future__ import annotations

import numpy as np

import kernels

from ..autograd.function import Function


class AttentionFn(Function):
    name = "attention"
    formula = "dv = P^T g ; dS = P * (g v^T - rowsum(g * out)) ; dq = scale dS k ; dk = scale dS^T q"

    @staticmethod
    def forward(ctx, q, k, v, causal=False, key_padding_mask=None, scale=None, backend="reference"):
        out, lse = kernels.attention_forward(q, k, v, causal=causal, key_padding_mask=key_padding_mask,
                                             scale=scale, backend=backend)
        ctx.save_for_backward(q, k, v, out, lse)
        ctx.options = dict(causal=causal, key_padding_mask=key_padding_mask, scale=scale, backend=backend)
        return out

    @staticmethod
    def backward(ctx, g):
        q, k, v, out, lse = ctx.saved
        dq, dk, dv = kernels.attention_backward(np.ascontiguousarray(g), q, k, v, out, lse, **ctx.options)
        return dq, dk, dv


def attention(q, k, v, causal: bool = False, key_padding_mask=None, scale=None, backend: str = "reference"):
    mask = None if key_padding_mask is None else np.asarray(getattr(key_padding_mask, "data", key_padding_mask))
    return AttentionFn.apply(q, k, v, causal=causal, key_padding_mask=mask, scale=scale, backend=backend)
