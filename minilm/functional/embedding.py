"""Embedding lookup: out[..., :] = W[ids[...], :]; the backward scatter-adds into W's rows."""
from __future__ import annotations

import numpy as np

from ..autograd.function import Function
from ..errors import DTypeError, ShapeError


class EmbeddingFn(Function):
    name = "embedding"
    formula = "dW = zeros; dW[ids] += g   (repeated ids add up; the padding_idx row gets none)"

    @staticmethod
    def forward(ctx, weight, ids=None, padding_idx=None):
        # weight (V, C), ids (...) int -> out (..., C)
        ids = np.asarray(ids)
        if ids.dtype.kind not in "iu":
            raise DTypeError(f"embedding: ids must be integers; got dtype {ids.dtype}")
        if ids.size and (ids.min() < 0 or ids.max() >= weight.shape[0]):
            raise ShapeError(f"embedding: ids must lie in [0, {weight.shape[0]}); got min {ids.min()}, max {ids.max()}")
        ctx.ids, ctx.padding_idx, ctx.shape = ids, padding_idx, weight.shape
        return weight[ids]

    @staticmethod
    def backward(ctx, g):
        dweight = np.zeros(ctx.shape, dtype=g.dtype)                     # (V, C)
        flat_ids = ctx.ids.reshape(-1)
        flat_g = g.reshape(-1, ctx.shape[1])
        if flat_ids.size:
            # sort once, then sum each id's rows with reduceat: much faster than np.add.at
            order = np.argsort(flat_ids, kind="stable")
            sorted_ids = flat_ids[order]
            starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])
            dweight[sorted_ids[starts]] = np.add.reduceat(flat_g[order], starts, axis=0)
        if ctx.padding_idx is not None:
            dweight[ctx.padding_idx] = 0
        return dweight


def embedding(ids, weight, padding_idx=None):
    return EmbeddingFn.apply(weight, ids=np.asarray(getattr(ids, "data", ids)), padding_idx=padding_idx)
