"""softmax and log_softmax along an axis, stable for any magnitude (the row max is subtracted).

softmax:      y = exp(x - max) / sum exp(x - max);   dx = y * (g - sum(g * y))
log_softmax:  y = x - max - log(sum exp(x - max));   dx = g - softmax(x) * sum(g)
"""
from __future__ import annotations

import numpy as np

from ..autograd.function import Function


class SoftmaxFn(Function):
    name = "softmax"
    formula = "dx = y * (g - sum(g * y, axis))"

    @staticmethod
    def forward(ctx, x, axis=-1):
        shifted = x - x.max(axis=axis, keepdims=True)
        e = np.exp(shifted)
        y = e / e.sum(axis=axis, keepdims=True)
        ctx.save_for_backward(y)
        ctx.axis = axis
        return y

    @staticmethod
    def backward(ctx, g):
        y = ctx.saved[0]
        return y * (g - np.sum(g * y, axis=ctx.axis, keepdims=True))


class LogSoftmaxFn(Function):
    name = "log_softmax"
    formula = "dx = g - softmax(x) * sum(g, axis)"

    @staticmethod
    def forward(ctx, x, axis=-1):
        shifted = x - x.max(axis=axis, keepdims=True)
        y = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
        ctx.save_for_backward(y)
        ctx.axis = axis
        return y

    @staticmethod
    def backward(ctx, g):
        y = ctx.saved[0]
        return g - np.exp(y) * np.sum(g, axis=ctx.axis, keepdims=True)


def softmax(x, axis: int = -1):
    return SoftmaxFn.apply(x, axis=axis)


def log_softmax(x, axis: int = -1):
    return LogSoftmaxFn.apply(x, axis=axis)
