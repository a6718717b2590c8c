"""Shape, indexing and joining ops: they move gradients, they do not change them.

reshape/transpose/swapaxes: the gradient takes the inverse move. expand: the gradient is
un-broadcast (summed) back. Indexing and gather: the gradient scatter-ADDS into zeros, so an
element picked twice gets both contributions. concatenate/stack: the gradient is split.
"""
from __future__ import annotations

import numpy as np

from ..errors import DTypeError, ShapeError
from .function import Function


def _shape_args(shape):
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else tuple(shape)


class Reshape(Function):
    formula = "da = g.reshape(a.shape)"

    @staticmethod
    def forward(ctx, a, shape=None):
        ctx.shape = a.shape
        try:
            return a.reshape(shape)
        except ValueError:
            raise ShapeError(f"reshape: cannot reshape {a.shape} ({a.size} elements) into {shape}") from None

    @staticmethod
    def backward(ctx, g):
        return g.reshape(ctx.shape)


class Transpose(Function):
    formula = "da = g.transpose(inverse permutation)"

    @staticmethod
    def forward(ctx, a, axes=None):
        axes = tuple(reversed(range(a.ndim))) if not axes else tuple(int(x) % a.ndim for x in axes)
        if sorted(axes) != list(range(a.ndim)):
            raise ShapeError(f"transpose: axes {axes} are not a permutation of an input with {a.ndim} axes")
        ctx.inverse = tuple(np.argsort(axes))
        return a.transpose(axes)

    @staticmethod
    def backward(ctx, g):
        return g.transpose(ctx.inverse)


class Swapaxes(Function):
    formula = "da = g.swapaxes(axis1, axis2)"

    @staticmethod
    def forward(ctx, a, axis1=0, axis2=1):
        ctx.axes = (axis1, axis2)
        try:
            return np.swapaxes(a, axis1, axis2)
        except Exception:
            raise ShapeError(f"swapaxes: axes ({axis1}, {axis2}) out of range for shape {a.shape}") from None

    @staticmethod
    def backward(ctx, g):
        return np.swapaxes(g, *ctx.axes)


class Expand(Function):
    formula = "da = unbroadcast(g, a.shape)  (sum over the expanded axes; done by the engine)"

    @staticmethod
    def forward(ctx, a, shape=None):
        try:
            return np.broadcast_to(a, shape)
        except ValueError:
            raise ShapeError(f"expand: cannot broadcast shape {a.shape} to {shape}") from None

    @staticmethod
    def backward(ctx, g):
        return g                                   # the engine's unbroadcast step reduces it


def _is_basic_index(index) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, (int, np.integer, slice)) or i is None or i is Ellipsis for i in items)


class GetItem(Function):
    formula = "da = zeros_like(a); da[index] += g   (scatter-add: repeated indices sum)"

    @staticmethod
    def forward(ctx, a, index=None):
        ctx.shape, ctx.dtype, ctx.index = a.shape, a.dtype, index
        try:
            return a[index]
        except IndexError as error:
            raise ShapeError(f"getitem: index {index!r} does not fit shape {a.shape}: {error}") from None

    @staticmethod
    def backward(ctx, g):
        grad = np.zeros(ctx.shape, dtype=g.dtype)
        if _is_basic_index(ctx.index):
            grad[ctx.index] = g                     # a view: every element is picked at most once
        else:
            np.add.at(grad, ctx.index, g)
        return grad


class Gather(Function):
    formula = "da = zeros_like(a); da[..., index, ...] += g along axis (scatter-add)"

    @staticmethod
    def forward(ctx, a, index=None, axis=0):
        if index.dtype.kind not in "iu":
            raise DTypeError(f"gather: index must hold integers; got dtype {index.dtype}")
        if index.ndim != a.ndim:
            raise ShapeError(f"gather: index must have as many axes as the input ({a.ndim}); got {index.shape}")
        axis = axis % a.ndim
        if index.size and (index.min() < -a.shape[axis] or index.max() >= a.shape[axis]):
            raise ShapeError(f"gather: index values must lie in [0, {a.shape[axis]}) along axis {axis}; "
                             f"got min {index.min()}, max {index.max()}")
        ctx.shape, ctx.index, ctx.axis = a.shape, index, axis
        return np.take_along_axis(a, index, axis=axis)

    @staticmethod
    def backward(ctx, g):
        grad = np.zeros(ctx.shape, dtype=g.dtype)
        positions = list(np.indices(ctx.index.shape, sparse=True))
        positions[ctx.axis] = ctx.index
        np.add.at(grad, tuple(positions), g)
        return grad


class Concatenate(Function):
    formula = "d(input_i) = the slice of g that input_i filled"

    @staticmethod
    def forward(ctx, *arrays, axis=0):
        try:
            out = np.concatenate(arrays, axis=axis)
        except ValueError:
            raise ShapeError(f"concatenate: shapes {[a.shape for a in arrays]} differ outside axis {axis}") from None
        ctx.axis = axis
        ctx.splits = np.cumsum([a.shape[axis] for a in arrays])[:-1]
        return out

    @staticmethod
    def backward(ctx, g):
        return tuple(np.split(g, ctx.splits, axis=ctx.axis))


class Stack(Function):
    formula = "d(input_i) = g taken at position i along the new axis"

    @staticmethod
    def forward(ctx, *arrays, axis=0):
        try:
            out = np.stack(arrays, axis=axis)
        except ValueError:
            raise ShapeError(f"stack: all inputs need one shape; got {[a.shape for a in arrays]}") from None
        ctx.axis, ctx.count = axis, len(arrays)
        return out

    @staticmethod
    def backward(ctx, g):
        return tuple(np.take(g, i, axis=ctx.axis) for i in range(ctx.count))


class Where(Function):
    formula = "da = g * cond ; db = g * (1 - cond)   (cond carries no gradient)"

    @staticmethod
    def forward(ctx, cond, a, b):
        cond = np.asarray(cond)
        if cond.dtype != bool:
            raise DTypeError(f"where: cond must be boolean; got dtype {cond.dtype}")
        ctx.save_for_backward(cond)
        try:
            return np.where(cond, a, b)
        except ValueError:
            raise ShapeError(f"where: shapes cond{cond.shape}, a{np.shape(a)}, b{np.shape(b)} do not broadcast") from None

    @staticmethod
    def backward(ctx, g):
        cond = ctx.saved[0]
        _, need_a, need_b = ctx.needs_input_grad
        zero = np.zeros((), dtype=g.dtype)
        return None, (np.where(cond, g, zero) if need_a else None), (np.where(cond, zero, g) if need_b else None)


class MaskedFill(Function):
    formula = "da = g * (1 - mask)"

    @staticmethod
    def forward(ctx, a, mask=None, value=0.0):
        mask = np.asarray(mask)
        if mask.dtype != bool:
            raise DTypeError(f"masked_fill: mask must be boolean; got dtype {mask.dtype}")
        try:
            out = np.where(mask, np.asarray(value, dtype=a.dtype), a)
        except ValueError:
            raise ShapeError(f"masked_fill: mask shape {mask.shape} does not broadcast to {a.shape}") from None
        if out.shape != a.shape:
            raise ShapeError(f"masked_fill: mask shape {mask.shape} would enlarge input {a.shape} to {out.shape}")
        ctx.save_for_backward(mask)
        return out

    @staticmethod
    def backward(ctx, g):
        return np.where(ctx.saved[0], np.zeros((), dtype=g.dtype), g)


def _raw(x):
    return getattr(x, "data", x)


def reshape(a, *shape): return Reshape.apply(a, shape=_shape_args(shape))
def transpose(a, *axes): return Transpose.apply(a, axes=_shape_args(axes) if axes else None)
def swapaxes(a, axis1, axis2): return Swapaxes.apply(a, axis1=axis1, axis2=axis2)
def expand(a, *shape): return Expand.apply(a, shape=_shape_args(shape))
broadcast_to = expand


def getitem(a, index):
    if isinstance(index, tuple):
        index = tuple(_raw(i) for i in index)
    else:
        index = _raw(index)
    if isinstance(index, list):
        index = np.asarray(index)
    return GetItem.apply(a, index=index)


def gather(a, axis, index): return Gather.apply(a, index=np.asarray(_raw(index)), axis=axis)
def concatenate(tensors, axis=0): return Concatenate.apply(*tensors, axis=axis)
def stack(tensors, axis=0): return Stack.apply(*tensors, axis=axis)
def masked_fill(a, mask, value): return MaskedFill.apply(a, mask=_raw(mask), value=value)


def where(cond, a, b):
    from .ops import _operands
    if hasattr(a, "_node") or hasattr(b, "_node"):
        a, b = _operands(a, b)
    return Where.apply(_raw(cond), a, b)
