"""Hypothesis strategies for attention and matmul inputs, written once and reused by every
kernel's tests and by the verifier.

    attention_cases(...)  ->  AttentionCase(q, k, v, dout, key_padding_mask, causal, scale)

Shapes are drawn independently (Nq != Nk, head dims that are not powers of two, sizes around
block boundaries), GQA groups, padding masks that hide whole rows and the last key, and value
scales up to large-magnitude logits (|q.k| * scale up to `max_logit`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st


def boundary_sizes(low: int, high: int) -> list[int]:
    """Sizes 2^k - 1, 2^k, 2^k + 1 within [low, high]: where block-tiling bugs live."""
    sizes = set()
    power = 1
    while power <= high + 1:
        for s in (power - 1, power, power + 1):
            if low <= s <= high:
                sizes.add(s)
        power *= 2
    return sorted(sizes)


def sizes(low: int, high: int) -> st.SearchStrategy[int]:
    """An integer in [low, high], with the boundary sizes drawn often."""
    edges = boundary_sizes(low, high)
    anywhere = st.integers(low, high)
    return st.one_of(st.sampled_from(edges), anywhere) if edges else anywhere


@dataclass
class AttentionCase:
    q: np.ndarray                 # (B, H, Nq, D)
    k: np.ndarray                 # (B, Hkv, Nk, D)
    v: np.ndarray                 # (B, Hkv, Nk, D)
    dout: np.ndarray              # (B, H, Nq, D)
    key_padding_mask: np.ndarray | None   # (B, Nk) bool, True = ignore
    causal: bool
    scale: float | None
    seed: int

    def kwargs(self) -> dict:
        return dict(causal=self.causal, key_padding_mask=self.key_padding_mask, scale=self.scale)

    def astype(self, dtype) -> "AttentionCase":
        cast = lambda x: x.astype(dtype)
        return AttentionCase(cast(self.q), cast(self.k), cast(self.v), cast(self.dout),
                             self.key_padding_mask, self.causal, self.scale, self.seed)

    def describe(self) -> str:
        b, h, nq, d = self.q.shape
        hkv, nk = self.k.shape[1], self.k.shape[2]
        masked = "none" if self.key_padding_mask is None else f"{int(self.key_padding_mask.sum())} keys"
        return (f"B={b} H={h} Hkv={hkv} Nq={nq} Nk={nk} D={d} causal={self.causal} scale={self.scale} "
                f"mask={masked} dtype={self.q.dtype} seed={self.seed}")


@st.composite
def attention_cases(draw, *, max_batch=2, max_heads=4, max_seq_q=64, max_seq_k=64, min_head_dim=1,
                    max_head_dim=80, head_dims=None, dtype=np.float64, causal=None, gqa=True,
                    masks=True, max_logit=30.0, identical_keys=True) -> AttentionCase:
    """Draw one attention problem. `causal=None` draws it; `head_dims` fixes a list to sample."""
    batch = draw(st.integers(1, max_batch))
    kv_heads = draw(st.integers(1, max_heads))
    group = draw(st.integers(1, max(1, max_heads // kv_heads))) if gqa else 1
    heads = kv_heads * group
    seq_q = draw(sizes(1, max_seq_q))
    seq_k = draw(sizes(1, max_seq_k))
    head_dim = draw(st.sampled_from(head_dims)) if head_dims else draw(sizes(min_head_dim, max_head_dim))
    is_causal = draw(st.booleans()) if causal is None else causal
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    # Target logit magnitude |q.k| * scale: from tiny to large. With unit normal q, k the logits
    # have std ~ sqrt(D) * scale * amp^2 = amp^2 at the default scale.
    logit = draw(st.sampled_from([1e-3, 1.0, 3.0, max_logit]))
    amp = math.sqrt(logit)
    q = rng.standard_normal((batch, heads, seq_q, head_dim)) * amp
    k = rng.standard_normal((batch, kv_heads, seq_k, head_dim)) * amp
    v = rng.standard_normal((batch, kv_heads, seq_k, head_dim))
    if identical_keys and seq_k > 1 and draw(st.booleans()):
        k[:, :, 1:] = k[:, :, :1]                                      # all keys equal: uniform rows
    dout = rng.standard_normal((batch, heads, seq_q, head_dim))
    mask = None
    if masks and draw(st.booleans()):
        mask = rng.random((batch, seq_k)) < draw(st.sampled_from([0.0, 0.3, 0.7]))
        if draw(st.booleans()):
            mask[:, -1] = True                                         # the last key always padded
        if batch > 1 and draw(st.booleans()):
            mask[-1, :] = True                                         # a batch row with no key at all
    use_default_scale = draw(st.booleans())
    scale = None if use_default_scale else draw(st.sampled_from([0.05, 0.3, 1.0]))
    case = AttentionCase(q, k, v, dout, mask, is_causal, scale, seed)
    return case.astype(dtype)


@st.composite
def matmul_cases(draw, *, max_dim=200, dtype=np.float64, transposed=True):
    """Draw (a (M, K), b (K, N)); sometimes non-contiguous (transposed or strided views)."""
    m, k, n = draw(sizes(1, max_dim)), draw(sizes(1, max_dim)), draw(sizes(1, max_dim))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    if transposed and draw(st.booleans()):
        a = np.asfortranarray(a)
    if transposed and draw(st.booleans()):
        b = rng.standard_normal((n, k)).astype(dtype).T               # a transposed view
    return a, b
