"""Scaled dot-product attention through the kernels package (reference, numba or triton).

q (B, H, Nq, D), k and v (B, Hkv, Nk, D) -> out (B, H, Nq, D). The forward keeps lse (B, H, Nq),
the per-row log-sum-exp, so the backward recomputes the probabilities instead of storing them:
    P = exp(scale * q k^T - lse);  dv = P^T dout;  dS = P * (dout v^T - rowsum(dout * out))
    dq = scale * dS k;  dk = scale * dS^T q            (kernels/reference.py has the derivation)
"""
from __future__ import annotations

import contextlib

import numpy as np

import kernels

from ..autograd.function import Function
from ..errors import DTypeError, NonFiniteError, ShapeError


@contextlib.contextmanager
def _as_minilm_errors():
    """kernels never imports minilm: turn its input errors into minilm's (NaN/inf -> NonFiniteError)."""
    try:
        yield
    except kernels.KernelInputError as error:
        kind = NonFiniteError if "NaN" in str(error) else ShapeError
        raise kind(f"attention: {error}") from error


class AttentionFn(Function):
    name = "attention"
    formula = "dv = P^T g ; dS = P * (g v^T - rowsum(g * out)) ; dq = scale dS k ; dk = scale dS^T q"

    @staticmethod
    def forward(ctx, q, k, v, causal=False, key_padding_mask=None, scale=None, backend="reference"):
        with _as_minilm_errors():
            out, lse = kernels.attention_forward(q, k, v, causal=causal, key_padding_mask=key_padding_mask,
                                                 scale=scale, backend=backend)
        ctx.save_for_backward(q, k, v, out, lse)
        ctx.options = dict(causal=causal, key_padding_mask=key_padding_mask, scale=scale, backend=backend)
        return out

    @staticmethod
    def backward(ctx, g):
        q, k, v, out, lse = ctx.saved
        with _as_minilm_errors():
            dq, dk, dv = kernels.attention_backward(np.ascontiguousarray(g), q, k, v, out, lse, **ctx.options)
        return dq, dk, dv


def _check_inputs(q, k, v, mask) -> None:
    """The layout contract, checked here so that bad input raises a minilm error naming the argument."""
    qs, ks, vs = tuple(q.shape), tuple(k.shape), tuple(v.shape)
    if len(qs) != 4:
        raise ShapeError(f"attention: q must be (B, H, Nq, D); got {qs}")
    if len(ks) != 4 or ks[0] != qs[0] or ks[3] != qs[3] or ks[1] < 1 or qs[1] % ks[1]:
        raise ShapeError(f"attention: k must be (B, Hkv, Nk, D) = ({qs[0]}, Hkv, Nk, {qs[3]}) with Hkv dividing "
                         f"H={qs[1]}; got {ks}")
    if vs != ks:
        raise ShapeError(f"attention: v must have k's shape {ks}; got {vs}")
    for name, x in (("q", q), ("k", k), ("v", v)):
        if x.dtype.kind != "f":
            raise DTypeError(f"attention: {name} must be float32 or float64; got dtype {x.dtype}")
    if mask is not None:
        if mask.dtype != np.bool_:
            raise DTypeError(f"attention: key_padding_mask must be boolean (True = padding to ignore); "
                             f"got dtype {mask.dtype}")
        if mask.shape != (qs[0], ks[2]):
            raise ShapeError(f"attention: key_padding_mask must be (B, Nk) = {(qs[0], ks[2])}; got {mask.shape}")


def attention(q, k, v, causal: bool = False, key_padding_mask=None, scale=None, backend: str = "reference"):
    """q (B, H, Nq, D), k and v (B, Hkv, Nk, D) -> out (B, H, Nq, D); causal is bottom-right aligned,
    key_padding_mask (B, Nk) bool with True = ignore; a row with no visible key gives 0."""
    mask = None if key_padding_mask is None else np.asarray(getattr(key_padding_mask, "data", key_padding_mask))
    _check_inputs(q, k, v, mask)
    return AttentionFn.apply(q, k, v, causal=causal, key_padding_mask=mask, scale=scale, backend=backend)
