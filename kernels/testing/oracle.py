"""The float64 oracle for any causal alignment, and the same-precision naive implementation.

    allowed_keys(...)        (B, 1, Nq, Nk) bool: True where query i may see key j
    oracle_forward/backward  float64 truth: kernels.reference for bottom-right (its contract),
                             the dense formula below with an explicit mask for top-left
    dense_forward/backward   the textbook formula in any precision (float64, float32, float16,
                             bfloat16 emulated by rounding after every operation); run in the
                             kernel's precision it is the yardstick of the error budget
    magnitudes(...)          float64 size of each result computed with |values|: the rounding
                             floor of the budget scales with these

Causal alignments (query i of Nq, key j of Nk):
    bottom-right  j <= i + Nk - Nq    (ARCHITECTURE.md, FlashAttention 2.1+, KV-cache decoding)
    top-left      j <= i              (torch SDPA is_causal, FlashAttention < 2.1)

Dense formula, per (b, h), as in kernels/reference.py:
    S = scale * q @ k^T (masked = -inf)   lse = log(sum_j exp(S_ij))   P = exp(S - lse)   out = P @ v
    dv = P^T @ dout   dP = dout @ v^T   delta = rowsum(dout * out)   dS = P * (dP - delta)
    dq = scale * dS @ k   dk = scale * dS^T @ q   (dk, dv summed over each GQA group)
"""
from __future__ import annotations

import numpy as np

from .. import reference
from ..checks import default_scale
from .strategies import round_to_bfloat16

EPSILON = {"float64": 2.0 ** -52, "float32": 2.0 ** -23, "float16": 2.0 ** -10, "bfloat16": 2.0 ** -7}


def allowed_keys(batch: int, seq_q: int, seq_k: int, causal: bool, alignment: str | None,
                 key_padding_mask=None) -> np.ndarray:
    allowed = np.ones((batch, 1, seq_q, seq_k), dtype=bool)
    if causal:
        offset = seq_k - seq_q if alignment == "bottom-right" else 0
        allowed &= (np.arange(seq_k)[None, :] <= np.arange(seq_q)[:, None] + offset)[None, None]
    if key_padding_mask is not None:
        allowed &= ~np.asarray(key_padding_mask, dtype=bool)[:, None, None, :]
    return allowed


class _Precision:
    """Arithmetic in one precision: numpy's own dtype, or float32 rounded to bfloat16 after each op."""

    def __init__(self, dtype: str):
        self.name = dtype
        self.dtype = np.dtype("float32" if dtype == "bfloat16" else dtype)

    def __call__(self, x):
        x = np.asarray(x, dtype=self.dtype)
        return round_to_bfloat16(x) if self.name == "bfloat16" else x


def _expand(x, group):
    return x if group == 1 else np.repeat(x, group, axis=1)


def _sum_groups(x, group):
    if group == 1:
        return x
    b, h, n, d = x.shape
    return x.reshape(b, h // group, group, n, d).sum(axis=2)


def _probabilities(q, k, allowed, scale, rnd):
    scores = rnd(rnd(np.matmul(q, np.swapaxes(k, -1, -2))) * rnd(scale))
    scores = np.where(allowed, scores, -np.inf)
    row_max = scores.max(axis=-1, initial=-np.inf)
    safe_max = np.where(np.isfinite(row_max), row_max, 0).astype(rnd.dtype)
    with np.errstate(under="ignore", over="ignore"):
        unnormalised = rnd(np.exp(rnd(scores - safe_max[..., None])))
    row_sum = rnd(unnormalised.sum(axis=-1))
    has_key = row_sum > 0
    with np.errstate(divide="ignore"):
        lse = np.where(has_key, rnd(safe_max + rnd(np.log(np.where(has_key, row_sum, 1)))), -np.inf)
    probs = rnd(unnormalised / np.where(has_key, row_sum, 1)[..., None])
    return probs, lse.astype(rnd.dtype)


def dense_forward(q, k, v, allowed, scale, dtype="float64"):
    """Textbook attention in `dtype`; returns float64 (out (B, H, Nq, D), lse (B, H, Nq))."""
    rnd = _Precision(dtype)
    group = q.shape[1] // k.shape[1]
    q, k, v = rnd(q), rnd(_expand(k, group)), rnd(_expand(v, group))
    probs, lse = _probabilities(q, k, allowed, scale, rnd)
    out = rnd(np.matmul(probs, v))
    return out.astype(np.float64), lse.astype(np.float64)


def dense_backward(dout, q, k, v, allowed, scale, dtype="float64"):
    """Textbook attention gradients in `dtype`; returns float64 (dq, dk, dv)."""
    rnd = _Precision(dtype)
    group = q.shape[1] // k.shape[1]
    q, k, v, dout = rnd(q), rnd(_expand(k, group)), rnd(_expand(v, group)), rnd(dout)
    probs, _ = _probabilities(q, k, allowed, scale, rnd)
    out = rnd(np.matmul(probs, v))
    dv = rnd(np.matmul(np.swapaxes(probs, -1, -2), dout))
    dprobs = rnd(np.matmul(dout, np.swapaxes(v, -1, -2)))
    delta = rnd(np.sum(rnd(dout * out), axis=-1, keepdims=True))
    dscores = rnd(probs * rnd(dprobs - delta))
    dq = rnd(rnd(np.matmul(dscores, k)) * rnd(scale))
    dk = rnd(rnd(np.matmul(np.swapaxes(dscores, -1, -2), q)) * rnd(scale))
    dk, dv = rnd(_sum_groups(dk, group)), rnd(_sum_groups(dv, group))
    return tuple(x.astype(np.float64) for x in (dq, dk, dv))


def oracle_forward(q, k, v, *, causal, alignment, key_padding_mask, scale):
    """float64 truth. Bottom-right (and non-causal) straight from kernels.reference."""
    if not causal or alignment == "bottom-right":
        return reference.attention_forward(q, k, v, causal=causal, key_padding_mask=key_padding_mask, scale=scale)
    allowed = allowed_keys(q.shape[0], q.shape[2], k.shape[2], causal, alignment, key_padding_mask)
    return dense_forward(q, k, v, allowed, default_scale(q.shape[-1], scale))


def oracle_backward(dout, q, k, v, out, lse, *, causal, alignment, key_padding_mask, scale):
    if not causal or alignment == "bottom-right":
        return reference.attention_backward(dout, q, k, v, out, lse, causal=causal,
                                            key_padding_mask=key_padding_mask, scale=scale)
    allowed = allowed_keys(q.shape[0], q.shape[2], k.shape[2], causal, alignment, key_padding_mask)
    return dense_backward(dout, q, k, v, allowed, default_scale(q.shape[-1], scale))


def magnitudes(q, k, v, dout, out, allowed, scale) -> dict:
    """Largest |logit| seen through absolute values, and the size of each result computed with
    |values| (float64). A rounding error of eps in a logit moves every result by about
    eps * max|logit| * its magnitude, whatever the summation order."""
    group = q.shape[1] // k.shape[1]
    k_full, v_full = _expand(k, group), _expand(v, group)
    abs_logits = np.abs(q) @ np.abs(np.swapaxes(k_full, -1, -2)) * abs(scale)      # (B, H, Nq, Nk)
    visible = np.broadcast_to(allowed, abs_logits.shape)
    max_logit = float(abs_logits[visible].max()) if visible.any() else 0.0
    probs, lse = _probabilities(q, k_full, allowed, scale, _Precision("float64"))
    dprobs_abs = np.abs(dout) @ np.abs(np.swapaxes(v_full, -1, -2))
    delta_abs = np.sum(np.abs(dout * out), axis=-1, keepdims=True)
    dscores_abs = probs * (dprobs_abs + delta_abs)
    finite_lse = np.abs(lse[np.isfinite(lse)])
    biggest = lambda x: float(x.max()) if x.size else 0.0
    return {
        "max_logit": max_logit,
        "out": biggest(probs @ np.abs(v_full)),
        "lse": 1.0 + biggest(finite_lse),
        "dv": biggest(_sum_groups(np.swapaxes(probs, -1, -2) @ np.abs(dout), group)),
        "dq": biggest(abs(scale) * dscores_abs @ np.abs(k_full)),
        "dk": biggest(_sum_groups(abs(scale) * np.swapaxes(dscores_abs, -1, -2) @ np.abs(q), group)),
    }
