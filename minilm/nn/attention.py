"""Multi-head attention (self and cross, causal or not, padding masks, grouped-query heads) and the
KV cache for incremental decoding.

    x (B, T, C) -> q = q_proj(x), k = k_proj(ctx), v = v_proj(ctx)    ctx = context (cross) or x (self)
    split heads: q (B, H, T, D), k, v (B, Hkv, S, D)       D = C / H
    o = attention(q, k, v, causal, key_padding_mask)        kernels: reference / numba / triton
    merge heads (B, T, C) -> out_proj

With a KVCache, each call appends this step's k, v to the cache and attends over all of them;
bottom-right causal alignment (query i sees keys j <= i + S - T) makes T new queries against S
cached keys exactly the rows they would be in the full forward.
"""
from __future__ import annotations

import numpy as np

from .. import functional as F
from ..autograd.function import Function
from ..errors import ShapeError
from .layers import Linear
from .module import Module


class LayerCache:
    """The keys and values seen so far by one attention layer: (B, Hkv, S, D) arrays."""

    def __init__(self):
        self.k = None
        self.v = None

    @property
    def length(self) -> int:
        return 0 if self.k is None else self.k.shape[2]

    def append(self, k: np.ndarray, v: np.ndarray):
        self.k = k if self.k is None else np.concatenate([self.k, k], axis=2)
        self.v = v if self.v is None else np.concatenate([self.v, v], axis=2)
        return self.k, self.v


class KVCache:
    """One LayerCache per transformer block; `length` = positions already processed."""

    def __init__(self, num_layers: int):
        self.layers = [LayerCache() for _ in range(num_layers)]

    def layer(self, index: int) -> LayerCache:
        return self.layers[index]

    @property
    def length(self) -> int:
        return self.layers[0].length if self.layers else 0


class MultiHeadAttention(Module):
    def __init__(self, dim: int, num_heads: int, bias: bool = True, causal: bool = False,
                 num_kv_heads: int | None = None, backend: str = "reference"):
        super().__init__()
        num_kv_heads = num_kv_heads or num_heads
        if dim % num_heads:
            raise ShapeError(f"MultiHeadAttention: dim {dim} must be divisible by num_heads {num_heads}")
        if num_heads % num_kv_heads:
            raise ShapeError(f"MultiHeadAttention: num_kv_heads {num_kv_heads} must divide num_heads {num_heads}")
        self.dim, self.num_heads, self.num_kv_heads = dim, num_heads, num_kv_heads
        self.head_dim = dim // num_heads
        self.causal, self.backend = causal, backend
        self.q_proj = Linear(dim, dim, bias)
        self.k_proj = Linear(dim, self.head_dim * num_kv_heads, bias)
        self.v_proj = Linear(dim, self.head_dim * num_kv_heads, bias)
        self.out_proj = Linear(dim, dim, bias)

    def _split(self, x, heads):
        batch, length, _ = x.shape
        return x.reshape(batch, length, heads, self.head_dim).transpose(0, 2, 1, 3)     # (B, heads, T, D)

    def forward(self, x, context=None, key_padding_mask=None, kv_cache: LayerCache | None = None):
        """x (B, T, C); context (B, S, C) for cross-attention; key_padding_mask (B, S) bool, True = ignore."""
        if x.ndim != 3 or x.shape[-1] != self.dim:
            raise ShapeError(f"MultiHeadAttention: x must be (B, T, {self.dim}); got {x.shape}")
        source = x if context is None else context
        if source.ndim != 3 or source.shape[-1] != self.dim or source.shape[0] != x.shape[0]:
            raise ShapeError(f"MultiHeadAttention: context must be (B={x.shape[0]}, S, {self.dim}); got {source.shape}")
        batch, length, _ = x.shape
        q = self._split(self.q_proj(x), self.num_heads)                                # (B, H, T, D)
        k = self._split(self.k_proj(source), self.num_kv_heads)                        # (B, Hkv, S, D)
        v = self._split(self.v_proj(source), self.num_kv_heads)
        if kv_cache is not None:
            # cached decoding is inference only: keys and values become constants of the graph
            k_all, v_all = kv_cache.append(np.ascontiguousarray(k.data), np.ascontiguousarray(v.data))
            k, v = k_all, v_all
        if key_padding_mask is not None:
            mask = np.asarray(getattr(key_padding_mask, "data", key_padding_mask))
            seq_k = k.shape[2]
            if mask.dtype != bool:
                raise ShapeError(f"MultiHeadAttention: key_padding_mask must be boolean (True = ignore); "
                                 f"got dtype {mask.dtype}")
            if mask.shape != (batch, seq_k):
                raise ShapeError(f"MultiHeadAttention: key_padding_mask must be (B, S) = {(batch, seq_k)}; "
                                 f"got {mask.shape}")
            key_padding_mask = mask
        out = F.attention(_contiguous(q), _contiguous(k), _contiguous(v), causal=self.causal,
                          key_padding_mask=key_padding_mask, backend=self.backend)      # (B, H, T, D)
        out = out.transpose(0, 2, 1, 3).reshape(batch, length, self.dim)               # (B, T, C)
        return self.out_proj(out)

    def attention_weights(self, x, context=None, key_padding_mask=None) -> np.ndarray:
        """The probabilities P (B, H, T, S) this layer would use for input x (for attention maps);
        the fused kernels never store them, so they are recomputed here: P = exp(scale q k^T - lse)."""
        import kernels
        from kernels.reference import visible_keys
        source = x if context is None else context
        q = self._split(self.q_proj(x), self.num_heads).data
        k = self._split(self.k_proj(source), self.num_kv_heads).data
        v = self._split(self.v_proj(source), self.num_kv_heads).data
        _, lse = kernels.attention_forward(q, k, v, causal=self.causal, key_padding_mask=key_padding_mask)
        k_full = np.repeat(k, self.num_heads // self.num_kv_heads, axis=1)
        scores = q @ np.swapaxes(k_full, -1, -2) / np.sqrt(self.head_dim)
        allowed = visible_keys(q.shape[2], k.shape[2], self.causal, key_padding_mask, q.shape[0])
        finite_lse = np.where(np.isfinite(lse), lse, 0.0)[..., None]
        return np.where(allowed, np.exp(np.where(allowed, scores - finite_lse, -np.inf)), 0.0)

    def extra_repr(self):
        return (f"dim={self.dim}, num_heads={self.num_heads}, num_kv_heads={self.num_kv_heads}, "
                f"causal={self.causal}, backend={self.backend!r}")


class _Contiguous(Function):
    name = "contiguous"
    formula = "da = g"

    @staticmethod
    def forward(ctx, a):
        return np.ascontiguousarray(a)

    @staticmethod
    def backward(ctx, g):
        return g


def _contiguous(x):
    if isinstance(x, np.ndarray):
        return np.ascontiguousarray(x)
    return x if x.data.flags.c_contiguous else _Contiguous.apply(x)
