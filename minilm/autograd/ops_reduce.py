"""Reductions: sum, mean, max, var, each with its gradient rule beside it.

A reduction's backward spreads g (the reduced shape) back over the reduced axes: `_expand_back`
re-inserts the reduced axes (when keepdims=False) so that g broadcasts against the input.
"""
from __future__ import annotations

import builtins

import numpy as np

from ..errors import ShapeError
from .function import Function


def _normalize_axis(axis, ndim: int, op: str):
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out = []
    for ax in axes:
        if not -ndim <= ax < builtins.max(ndim, 1):
            raise ShapeError(f"{op}: axis {ax} is out of range for an input with {ndim} axes")
        out.append(int(ax) % builtins.max(ndim, 1))
    return tuple(sorted(set(out)))


def _expand_back(g: np.ndarray, axes: tuple, keepdims: bool) -> np.ndarray:
    """Give g back the reduced axes as size-1 axes, so it broadcasts against the input."""
    return g if keepdims else np.expand_dims(g, axes)


class Sum(Function):
    formula = "da = g broadcast over the summed axes"

    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False):
        ctx.axes = _normalize_axis(axis, a.ndim, "sum")
        ctx.keepdims, ctx.shape = keepdims, a.shape
        return np.sum(a, axis=ctx.axes, keepdims=keepdims)

    @staticmethod
    def backward(ctx, g):
        return np.broadcast_to(_expand_back(g, ctx.axes, ctx.keepdims), ctx.shape)


class Mean(Function):
    formula = "da = g / n broadcast over the averaged axes (n = number of averaged elements)"

    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False):
        ctx.axes = _normalize_axis(axis, a.ndim, "mean")
        ctx.keepdims, ctx.shape = keepdims, a.shape
        ctx.count = int(np.prod([a.shape[i] for i in ctx.axes])) if a.ndim else 1
        return np.mean(a, axis=ctx.axes, keepdims=keepdims)

    @staticmethod
    def backward(ctx, g):
        return np.broadcast_to(_expand_back(g, ctx.axes, ctx.keepdims) / ctx.count, ctx.shape)


class Max(Function):
    formula = "da = g * [a == max] / (number of maxima)   (ties share g evenly, as torch.amax)"

    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False):
        ctx.axes = _normalize_axis(axis, a.ndim, "max")
        ctx.keepdims = keepdims
        if a.size == 0:
            raise ShapeError(f"max: cannot reduce an empty array of shape {a.shape}")
        out_kept = np.max(a, axis=ctx.axes, keepdims=True)
        ctx.save_for_backward(a == out_kept)
        return out_kept if keepdims else np.squeeze(out_kept, axis=ctx.axes)

    @staticmethod
    def backward(ctx, g):
        is_max = ctx.saved[0]
        count = is_max.sum(axis=ctx.axes, keepdims=True)
        return _expand_back(g, ctx.axes, ctx.keepdims) * is_max / count


class Var(Function):
    formula = "da = g * 2 * (a - mean(a)) / (n - ddof)"

    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False, ddof=0):
        ctx.axes = _normalize_axis(axis, a.ndim, "var")
        ctx.keepdims = keepdims
        count = int(np.prod([a.shape[i] for i in ctx.axes])) if a.ndim else 1
        if count - ddof <= 0:
            raise ShapeError(f"var: {count} element(s) with ddof={ddof} leaves no degrees of freedom")
        centered = a - np.mean(a, axis=ctx.axes, keepdims=True)
        ctx.save_for_backward(centered)
        ctx.denominator = count - ddof
        return np.sum(centered * centered, axis=ctx.axes, keepdims=keepdims) / ctx.denominator

    @staticmethod
    def backward(ctx, g):
        centered = ctx.saved[0]
        return _expand_back(g, ctx.axes, ctx.keepdims) * 2 * centered / ctx.denominator


def sum(a, axis=None, keepdims=False): return Sum.apply(a, axis=axis, keepdims=keepdims)
def mean(a, axis=None, keepdims=False): return Mean.apply(a, axis=axis, keepdims=keepdims)
def max(a, axis=None, keepdims=False): return Max.apply(a, axis=axis, keepdims=keepdims)
def var(a, axis=None, keepdims=False, ddof=0): return Var.apply(a, axis=axis, keepdims=keepdims, ddof=ddof)
