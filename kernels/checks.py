"""Input validation shared by every attention and matmul backend.

One place for the contract in ARCHITECTURE.md, so every backend rejects bad input the same way
and with the same message:

    q (B, H, Nq, D), k and v (B, Hkv, Nk, D), H % Hkv == 0, key_padding_mask (B, Nk) bool
    (True = ignore that key), scale defaults to 1/sqrt(D).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import KernelInputError

FLOAT_DTYPES = (np.float32, np.float64)


@dataclass(frozen=True)
class AttentionShape:
    batch: int
    heads: int
    kv_heads: int
    seq_q: int
    seq_k: int
    head_dim: int

    @property
    def group_size(self) -> int:
        """Query heads that share one key/value head (1 without grouped-query attention)."""
        return self.heads // self.kv_heads


def _shape_of(x) -> tuple:
    return tuple(getattr(x, "shape", ()))


def check_attention_inputs(q, k, v, key_padding_mask=None, *, name: str = "attention") -> AttentionShape:
    """Check shapes of q, k, v and the mask; return the sizes. Works for NumPy and torch arrays."""
    qs, ks, vs = _shape_of(q), _shape_of(k), _shape_of(v)
    if len(qs) != 4:
        raise KernelInputError(f"{name}: q must be (B, H, Nq, D); got {qs}")
    if len(ks) != 4:
        raise KernelInputError(f"{name}: k must be (B, Hkv, Nk, D); got {ks}")
    if vs != ks:
        raise KernelInputError(f"{name}: v must have k's shape {ks} (B, Hkv, Nk, D); got {vs}")
    batch, heads, seq_q, head_dim = qs
    kb, kv_heads, seq_k, kd = ks
    if kb != batch:
        raise KernelInputError(f"{name}: k must have batch {batch} like q; got k.shape={ks}")
    if kd != head_dim:
        raise KernelInputError(f"{name}: k must have head dim D={head_dim} like q; got k.shape={ks}")
    if kv_heads < 1 or heads % kv_heads:
        raise KernelInputError(
            f"{name}: k's head count Hkv={kv_heads} must divide q's H={heads} (grouped-query attention)")
    if head_dim < 1:
        raise KernelInputError(f"{name}: head dim D must be >= 1; got q.shape={qs}")
    if key_padding_mask is not None:
        ms = _shape_of(key_padding_mask)
        if ms != (batch, seq_k):
            raise KernelInputError(f"{name}: key_padding_mask must be (B, Nk) = {(batch, seq_k)}; got {ms}")
        mdtype = str(getattr(key_padding_mask, "dtype", ""))
        if "bool" not in mdtype:
            raise KernelInputError(
                f"{name}: key_padding_mask must be boolean (True marks padding to ignore); got dtype {mdtype}")
    return AttentionShape(batch, heads, kv_heads, seq_q, seq_k, head_dim)


def check_backward_shapes(name: str, q, *, dout, out, lse) -> None:
    """dout and out must be q's shape (B, H, Nq, D); lse must be (B, H, Nq)."""
    for arg, x in (("dout", dout), ("out", out)):
        if _shape_of(x) != _shape_of(q):
            raise KernelInputError(f"{name}: {arg} must be (B, H, Nq, D) = {_shape_of(q)}; got {_shape_of(x)}")
    if _shape_of(lse) != _shape_of(q)[:3]:
        raise KernelInputError(f"{name}: lse must be (B, H, Nq) = {_shape_of(q)[:3]}; got {_shape_of(lse)}")


def dtype_name(x) -> str:
    """'float32', 'bfloat16', ... for a NumPy array or a torch tensor (torch is never imported here)."""
    if type(x).__module__.startswith("torch"):
        return str(x.dtype).replace("torch.", "")
    return np.dtype(x.dtype).name


def check_same_dtype(name: str, allowed: tuple[str, ...], **arrays) -> str:
    """All arrays must share one dtype among `allowed` (names); return that name."""
    dtype = None
    for arg, x in arrays.items():
        d = dtype_name(x)
        if d not in allowed:
            raise KernelInputError(f"{name}: {arg} must have dtype in ({', '.join(allowed)}); got {d}")
        if dtype is None:
            dtype = d
        elif d != dtype:
            first = next(iter(arrays))
            raise KernelInputError(f"{name}: {arg} has dtype {d} but {first} has {dtype}; they must match")
    return dtype


def check_float_dtypes(name: str, allowed=FLOAT_DTYPES, **arrays) -> np.dtype:
    """All arrays must share one floating dtype among `allowed`; return it."""
    return np.dtype(check_same_dtype(name, tuple(np.dtype(a).name for a in allowed), **arrays))


def check_finite(name: str, **arrays) -> None:
    """NaN and inf never pass silently."""
    for arg, x in arrays.items():
        if not np.isfinite(x).all():
            bad = int(np.size(x) - np.count_nonzero(np.isfinite(x)))
            raise KernelInputError(f"{name}: {arg} contains {bad} NaN/inf value(s)")


def default_scale(head_dim: int, scale) -> float:
    return 1.0 / math.sqrt(head_dim) if scale is None else float(scale)


def causal_offset(seq_q: int, seq_k: int) -> int:
    """Bottom-right causal alignment: query i sees keys j <= i + (Nk - Nq)."""
    return seq_k - seq_q


def check_matmul_inputs(a, b, *, name: str = "matmul") -> None:
    sa, sb = _shape_of(a), _shape_of(b)
    if len(sa) != 2 or len(sb) != 2:
        raise KernelInputError(f"{name}: a and b must be 2-D (M, K) and (K, N); got a{sa} and b{sb}")
    if sa[1] != sb[0]:
        raise KernelInputError(
            f"{name}: inner dimensions differ: a is (M, K) = {sa}, b must be (K, N) with K={sa[1]}; got b{sb}")
