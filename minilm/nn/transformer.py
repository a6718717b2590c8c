"""TransformerBlock: attention and a feed-forward network, each wrapped in a residual connection.

pre-LN (GPT-2):   x = x + drop(attn(ln1(x)));   x = x + ff(ln2(x))
post-LN (BERT):   x = ln1(x + drop(attn(x)));   x = ln2(x + ff(x))
"""
from __future__ import annotations

from .attention import MultiHeadAttention
from .layers import Dropout, FeedForward, LayerNorm
from .module import Module


class TransformerBlock(Module):
    def __init__(self, dim: int, num_heads: int, hidden: int | None = None, dropout: float = 0.0,
                 causal: bool = False, post_norm: bool = False, eps: float = 1e-5, activation: str = "gelu",
                 num_kv_heads: int | None = None, backend: str = "reference"):
        super().__init__()
        self.post_norm = post_norm
        self.ln1 = LayerNorm(dim, eps)
        self.attn = MultiHeadAttention(dim, num_heads, causal=causal, num_kv_heads=num_kv_heads, backend=backend)
        self.attn_drop = Dropout(dropout)
        self.ln2 = LayerNorm(dim, eps)
        self.ff = FeedForward(dim, hidden or 4 * dim, activation=activation, dropout=dropout)

    def forward(self, x, key_padding_mask=None, kv_cache=None):
        """x (B, T, C) -> (B, T, C)."""
        if self.post_norm:
            x = self.ln1(x + self.attn_drop(self.attn(x, key_padding_mask=key_padding_mask, kv_cache=kv_cache)))
            return self.ln2(x + self.ff(x))
        x = x + self.attn_drop(self.attn(self.ln1(x), key_padding_mask=key_padding_mask, kv_cache=kv_cache))
        return x + self.ff(self.ln2(x))

    def extra_repr(self):
        return "post-LN" if self.post_norm else "pre-LN"
