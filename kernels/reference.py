"""The NumPy attention and matmul reference: THE oracle every other backend is tested against.

Written plainly: the full score matrix is materialised and the softmax is the textbook stable
one. Every function preserves the dtype it is given, so it runs in float64 for checking.

Contract (ARCHITECTURE.md):
    q (B, H, Nq, D); k, v (B, Hkv, Nk, D) with Hkv dividing H (grouped-query attention: query
    head h uses key/value head h // (H // Hkv)); key_padding_mask (B, Nk) bool, True = ignore;
    causal=True is aligned to the bottom-right corner: query i sees keys j <= i + Nk - Nq
    (PyTorch's top-left `is_causal` is the same when Nq == Nk); scale defaults to 1/sqrt(D).
    Returns out (B, H, Nq, D) and lse (B, H, Nq), the natural-log log-sum-exp of each row's
    scaled, masked scores. A row with no visible key gives out 0, lse -inf, zero gradients.

Forward, per (b, h):
    S = scale * q @ k^T                  (Nq, Nk), masked entries = -inf
    lse = log(sum_j exp(S_ij))           (Nq,)
    P = exp(S - lse)                     (Nq, Nk)
    out = P @ v                          (Nq, D)
Backward, given dout (Nq, D):
    dv = P^T @ dout                      (Nk, D)
    dP = dout @ v^T                      (Nq, Nk)
    delta_i = sum_j P_ij dP_ij = rowsum(dout * out)       (Nq,)
    dS = P * (dP - delta)                (Nq, Nk)
    dq = scale * dS @ k                  (Nq, D)
    dk = scale * dS^T @ q                (Nk, D)
    with GQA, dk and dv are summed over the H // Hkv query heads of each group.
"""
from __future__ import annotations

import numpy as np

from .checks import (causal_offset, check_attention_inputs, check_backward_shapes, check_finite,
                     check_float_dtypes, check_matmul_inputs, default_scale)


def visible_keys(seq_q: int, seq_k: int, causal: bool, key_padding_mask=None, batch: int = 1) -> np.ndarray:
    """Boolean (B, 1, Nq, Nk): True where query i may attend to key j."""
    allowed = np.ones((batch, 1, seq_q, seq_k), dtype=bool)
    if causal:
        rows = np.arange(seq_q)[:, None]
        cols = np.arange(seq_k)[None, :]
        allowed &= (cols <= rows + causal_offset(seq_q, seq_k))[None, None]
    if key_padding_mask is not None:
        allowed &= ~np.asarray(key_padding_mask, dtype=bool)[:, None, None, :]
    return allowed


def _expand_kv(x: np.ndarray, group_size: int) -> np.ndarray:
    """(B, Hkv, N, D) -> (B, H, N, D): each key/value head serves `group_size` query heads."""
    return x if group_size == 1 else np.repeat(x, group_size, axis=1)


def _sum_groups(dx: np.ndarray, group_size: int) -> np.ndarray:
    """(B, H, N, D) -> (B, Hkv, N, D): the gradient of a shared head is the sum over its group."""
    if group_size == 1:
        return dx
    b, h, n, d = dx.shape
    return dx.reshape(b, h // group_size, group_size, n, d).sum(axis=2)


def _probabilities(scores: np.ndarray, lse: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """P = exp(S - lse) where allowed and the row has a visible key, else 0."""
    finite_lse = np.where(np.isfinite(lse), lse, 0.0).astype(scores.dtype)
    with np.errstate(under="ignore"):
        probs = np.exp(np.where(allowed, scores - finite_lse[..., None], -np.inf))
    return probs


def attention_forward(q, k, v, causal: bool = False, key_padding_mask=None, scale=None):
    """Reference attention forward. Returns (out (B, H, Nq, D), lse (B, H, Nq))."""
    shape = check_attention_inputs(q, k, v, key_padding_mask, name="reference.attention_forward")
    dtype = check_float_dtypes("reference.attention_forward", q=q, k=k, v=v)
    check_finite("reference.attention_forward", q=q, k=k, v=v)
    scale = default_scale(shape.head_dim, scale)
    k_full = _expand_kv(k, shape.group_size)                                   # (B, H, Nk, D)
    v_full = _expand_kv(v, shape.group_size)                                   # (B, H, Nk, D)
    allowed = visible_keys(shape.seq_q, shape.seq_k, causal, key_padding_mask, shape.batch)
    scores = np.matmul(q, np.swapaxes(k_full, -1, -2)) * dtype.type(scale)     # (B, H, Nq, Nk)
    scores = np.where(allowed, scores, -np.inf)
    row_max = scores.max(axis=-1, initial=-np.inf) if shape.seq_k else np.full(scores.shape[:-1], -np.inf, dtype)
    safe_max = np.where(np.isfinite(row_max), row_max, 0.0).astype(dtype)     # (B, H, Nq)
    with np.errstate(under="ignore"):
        unnormalised = np.exp(scores - safe_max[..., None])                    # exp(-inf) = 0 where masked
    row_sum = unnormalised.sum(axis=-1)                                        # (B, H, Nq)
    has_key = row_sum > 0
    with np.errstate(divide="ignore"):
        lse = np.where(has_key, safe_max + np.log(np.where(has_key, row_sum, 1.0)), -np.inf).astype(dtype)
    probs = unnormalised / np.where(has_key, row_sum, 1.0)[..., None]
    out = np.matmul(probs, v_full).astype(dtype, copy=False)                  # (B, H, Nq, D)
    return out, lse


def attention_backward(dout, q, k, v, out, lse, causal: bool = False, key_padding_mask=None, scale=None):
    """Reference attention backward. Returns (dq (B, H, Nq, D), dk, dv (B, Hkv, Nk, D))."""
    shape = check_attention_inputs(q, k, v, key_padding_mask, name="reference.attention_backward")
    dtype = check_float_dtypes("reference.attention_backward", dout=dout, q=q, k=k, v=v, out=out)
    check_backward_shapes("reference.attention_backward", q, dout=dout, out=out, lse=lse)
    check_finite("reference.attention_backward", dout=dout, q=q, k=k, v=v, out=out)
    scale = default_scale(shape.head_dim, scale)
    k_full = _expand_kv(k, shape.group_size)
    v_full = _expand_kv(v, shape.group_size)
    allowed = visible_keys(shape.seq_q, shape.seq_k, causal, key_padding_mask, shape.batch)
    scores = np.matmul(q, np.swapaxes(k_full, -1, -2)) * dtype.type(scale)     # (B, H, Nq, Nk)
    probs = _probabilities(scores, np.asarray(lse), allowed)                  # (B, H, Nq, Nk)
    dv_full = np.matmul(np.swapaxes(probs, -1, -2), dout)                      # (B, H, Nk, D)
    dprobs = np.matmul(dout, np.swapaxes(v_full, -1, -2))                      # (B, H, Nq, Nk)
    delta = np.sum(dout * out, axis=-1, keepdims=True)                         # (B, H, Nq, 1)
    dscores = probs * (dprobs - delta)                                         # (B, H, Nq, Nk)
    dq = np.matmul(dscores, k_full) * dtype.type(scale)                        # (B, H, Nq, D)
    dk_full = np.matmul(np.swapaxes(dscores, -1, -2), q) * dtype.type(scale)   # (B, H, Nk, D)
    dk = _sum_groups(dk_full, shape.group_size)
    dv = _sum_groups(dv_full, shape.group_size)
    return dq.astype(dtype, copy=False), dk.astype(dtype, copy=False), dv.astype(dtype, copy=False)


def matmul(a, b):
    """Reference matrix product of 2-D a (M, K) and b (K, N) in their own dtype."""
    check_matmul_inputs(a, b, name="reference.matmul")
    check_float_dtypes("reference.matmul", a=a, b=b)
    return np.matmul(a, b)
