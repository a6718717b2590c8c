"""Un-broadcasting: the one place where a gradient is reduced back to its input's shape.

If y = f(a, b) broadcast a of shape (3, 1) against b of shape (4,) to (3, 4), then each element
of a was used 4 times and its gradient is the sum of those 4 uses:

    dL/da = sum over the broadcast axes of dL/dy, kept to a's shape (3, 1).

Rule (NumPy broadcasting, read right to left): sum the leading axes that the input did not
have, then sum (keeping the axis) every axis where the input had size 1 and the output did not.
"""
from __future__ import annotations

import numpy as np


def broadcast_axes(grad_shape: tuple, input_shape: tuple) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Return (leading axes to drop, size-1 axes to sum with keepdims) for `unbroadcast`."""
    extra = len(grad_shape) - len(input_shape)
    if extra < 0:
        raise ValueError(f"unbroadcast: gradient shape {grad_shape} has fewer axes than input {input_shape}")
    leading = tuple(range(extra))
    stretched = tuple(i for i, size in enumerate(input_shape)
                      if size == 1 and grad_shape[extra + i] != 1)
    for i, size in enumerate(input_shape):
        if size != 1 and grad_shape[extra + i] != size:
            raise ValueError(f"unbroadcast: gradient shape {grad_shape} is not a broadcast of {input_shape}")
    return leading, stretched


def unbroadcast(grad: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum `grad` (shape of a broadcast result) down to `shape`, the input's shape."""
    shape = tuple(shape)
    if grad.shape == shape:
        return grad
    leading, stretched = broadcast_axes(grad.shape, shape)
    if leading:
        grad = grad.sum(axis=leading)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad.reshape(shape)
