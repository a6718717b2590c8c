"""Primitive ops: arithmetic and element-wise math, each with its gradient rule beside it.

Notation: g = dL/d(out) (the output's shape, possibly broadcast); every backward returns dL/d(input)
for each input. Broadcast inputs are reduced to their own shape by the engine (broadcast.py).
Reductions are in ops_reduce.py; shape, indexing and joining ops in ops_shape.py.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import DTypeError, ShapeError
from .function import Function
from .special import erf


def raw(x):
    """The array behind a Tensor, or x itself."""
    return getattr(x, "data", x)


def _require_float(op: str, a: np.ndarray) -> None:
    if a.dtype.kind != "f":
        raise DTypeError(f"{op}: needs a floating-point input; got dtype {a.dtype}")


def _broadcast_error(op: str, a, b) -> ShapeError:
    return ShapeError(f"{op}: cannot broadcast shapes {np.shape(a)} and {np.shape(b)} "
                      "(NumPy rules: trailing axes must be equal or 1)")


# ----- binary arithmetic -------------------------------------------------------------------
class Add(Function):
    formula = "da = g ; db = g"

    @staticmethod
    def forward(ctx, a, b):
        try:
            return a + b
        except ValueError:
            raise _broadcast_error("add", a, b) from None

    @staticmethod
    def backward(ctx, g):
        return g, g


class Sub(Function):
    formula = "da = g ; db = -g"

    @staticmethod
    def forward(ctx, a, b):
        try:
            return a - b
        except ValueError:
            raise _broadcast_error("sub", a, b) from None

    @staticmethod
    def backward(ctx, g):
        return g, (-g if ctx.needs_input_grad[1] else None)


class Mul(Function):
    formula = "da = g * b ; db = g * a"

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        try:
            return a * b
        except ValueError:
            raise _broadcast_error("mul", a, b) from None

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved
        need_a, need_b = ctx.needs_input_grad
        return (g * b if need_a else None), (g * a if need_b else None)


class Div(Function):
    formula = "da = g / b ; db = -g * a / b**2"

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        try:
            return a / b
        except ValueError:
            raise _broadcast_error("div", a, b) from None

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved
        need_a, need_b = ctx.needs_input_grad
        return (g / b if need_a else None), (-g * a / (b * b) if need_b else None)


class Pow(Function):
    formula = "da = g * b * a**(b-1) ; db = g * a**b * log(a)"

    @staticmethod
    def forward(ctx, a, b):
        try:
            out = a ** b
        except ValueError:
            raise _broadcast_error("pow", a, b) from None
        ctx.save_for_backward(a, b, out)
        return out

    @staticmethod
    def backward(ctx, g):
        a, b, out = ctx.saved
        need_a, need_b = ctx.needs_input_grad
        da = g * b * a ** (b - 1) if need_a else None
        db = None
        if need_b:
            with np.errstate(divide="ignore", invalid="ignore"):
                db = g * out * np.log(np.where(a > 0, a, 1))       # d(a^b)/db = a^b log a (a > 0)
        return da, db


class Matmul(Function):
    formula = "da = g @ b^T ; db = a^T @ g  (batch axes summed by un-broadcasting)"

    @staticmethod
    def forward(ctx, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ShapeError(f"matmul: needs at least 1-D inputs; got a{a.shape} @ b{b.shape}")
        inner_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
        if a.shape[-1] != inner_b:
            which = "first" if b.ndim == 1 else "second-to-last"
            raise ShapeError(f"matmul: a{a.shape} @ b{b.shape}: a's last axis ({a.shape[-1]}) must equal "
                             f"b's {which} axis ({inner_b})")
        ctx.save_for_backward(a, b)
        try:
            return np.matmul(a, b)
        except ValueError:
            raise ShapeError(f"matmul: batch axes of a{a.shape} and b{b.shape} do not broadcast") from None

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved
        need_a, need_b = ctx.needs_input_grad
        a2 = a[None, :] if a.ndim == 1 else a                       # (..., M, K)
        b2 = b[:, None] if b.ndim == 1 else b                       # (..., K, N)
        if a.ndim == 1 and b.ndim == 1:
            g2 = g.reshape(1, 1)                                    # (1, 1): a dot product
        elif a.ndim == 1:
            g2 = np.expand_dims(g, -2)                              # (..., 1, N)
        elif b.ndim == 1:
            g2 = np.expand_dims(g, -1)                              # (..., M, 1)
        else:
            g2 = g                                                  # (..., M, N)
        da = db = None
        if need_a:
            da = np.matmul(g2, np.swapaxes(b2, -1, -2))             # (..., M, K)
            if a.ndim == 1:
                da = da[..., 0, :]
        if need_b:
            db = np.matmul(np.swapaxes(a2, -1, -2), g2)             # (..., K, N)
            if b.ndim == 1:
                db = db[..., :, 0]
        return da, db


class Maximum(Function):
    formula = "da = g * [a > b] + g/2 * [a == b] ; db = g * [b > a] + g/2 * [a == b]"

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        try:
            return np.maximum(a, b)
        except ValueError:
            raise _broadcast_error("maximum", a, b) from None

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved
        share_a = (a > b) + 0.5 * (a == b)                          # ties split evenly, as torch
        return g * share_a, g * (1.0 - share_a)


# ----- unary element-wise ------------------------------------------------------------------
class Neg(Function):
    formula = "da = -g"

    @staticmethod
    def forward(ctx, a):
        return -a

    @staticmethod
    def backward(ctx, g):
        return -g


class Exp(Function):
    formula = "da = g * exp(a) = g * out"

    @staticmethod
    def forward(ctx, a):
        _require_float("exp", a)
        out = np.exp(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        return g * ctx.saved[0]


class Log(Function):
    formula = "da = g / a"

    @staticmethod
    def forward(ctx, a):
        _require_float("log", a)
        ctx.save_for_backward(a)
        return np.log(a)

    @staticmethod
    def backward(ctx, g):
        return g / ctx.saved[0]


class Sqrt(Function):
    formula = "da = g / (2 * sqrt(a)) = g / (2 * out)"

    @staticmethod
    def forward(ctx, a):
        _require_float("sqrt", a)
        out = np.sqrt(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        return g / (2 * ctx.saved[0])


class Tanh(Function):
    formula = "da = g * (1 - out**2)"

    @staticmethod
    def forward(ctx, a):
        _require_float("tanh", a)
        out = np.tanh(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        out = ctx.saved[0]
        return g * (1 - out * out)


class Sigmoid(Function):
    formula = "da = g * out * (1 - out)"

    @staticmethod
    def forward(ctx, a):
        _require_float("sigmoid", a)
        # stable for large |a|: exp of a non-positive number only
        e = np.exp(-np.abs(a))
        out = np.where(a >= 0, 1 / (1 + e), e / (1 + e)).astype(a.dtype, copy=False)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        out = ctx.saved[0]
        return g * out * (1 - out)


class Relu(Function):
    formula = "da = g * [a > 0]"

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a > 0)
        return np.maximum(a, 0)

    @staticmethod
    def backward(ctx, g):
        return g * ctx.saved[0]


_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


class Gelu(Function):
    formula = ("exact: da = g * (Phi(a) + a * phi(a)) ; tanh: u = c(a + 0.044715 a^3), "
               "da = g * (0.5(1 + tanh u) + 0.5 a (1 - tanh^2 u) c (1 + 3*0.044715 a^2))")

    @staticmethod
    def forward(ctx, a, approximate="none"):
        _require_float("gelu", a)
        if approximate == "tanh":
            t = np.tanh(_SQRT_2_OVER_PI * (a + 0.044715 * (a * a * a)))
            ctx.save_for_backward(a, t)
            ctx.approximate = "tanh"
            return 0.5 * a * (1 + t)
        if approximate != "none":
            raise ValueError(f"gelu: approximate must be 'none' or 'tanh'; got {approximate!r}")
        cdf = 0.5 * (1 + erf(a * _INV_SQRT_2))                       # Phi(a)
        ctx.save_for_backward(a, cdf)
        ctx.approximate = "none"
        return a * cdf

    @staticmethod
    def backward(ctx, g):
        a, saved = ctx.saved
        if ctx.approximate == "tanh":
            t = saved
            du = _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * a * a)
            return g * (0.5 * (1 + t) + 0.5 * a * (1 - t * t) * du)
        pdf = np.exp(-0.5 * a * a) * _INV_SQRT_2PI                   # phi(a)
        return g * (saved + a * pdf)


class Abs(Function):
    formula = "da = g * sign(a)   (sign(0) = 0)"

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(np.sign(a))
        return np.abs(a)

    @staticmethod
    def backward(ctx, g):
        return g * ctx.saved[0]


class Clip(Function):
    formula = "da = g * [min <= a <= max]"

    @staticmethod
    def forward(ctx, a, low=None, high=None):
        inside = np.ones(a.shape, dtype=bool)
        if low is not None:
            inside &= a >= low
        if high is not None:
            inside &= a <= high
        ctx.save_for_backward(inside)
        return np.clip(a, low, high)

    @staticmethod
    def backward(ctx, g):
        return g * ctx.saved[0]


class Cast(Function):
    formula = "da = g (cast back to a's dtype)"

    @staticmethod
    def forward(ctx, a, dtype=None):
        return a.astype(dtype)

    @staticmethod
    def backward(ctx, g):
        return g                                    # the engine casts to the input's dtype


# ----- the functional API ------------------------------------------------------------------
def _operands(a, b):
    """Turn constants into arrays of the tensor's float dtype (ints would promote to float64)."""
    like = a if hasattr(a, "_node") else b
    dtype = like.data.dtype
    if dtype.kind == "f":
        if not hasattr(a, "_node"):
            a = _constant(a, dtype)
        if not hasattr(b, "_node"):
            b = _constant(b, dtype)
    return a, b


def _constant(x, dtype):
    array = np.asarray(x)
    if array.dtype.kind in "biu" or (array.dtype.kind == "f" and array.ndim == 0):
        array = array.astype(dtype)
    return array


def add(a, b): return Add.apply(*_operands(a, b))
def sub(a, b): return Sub.apply(*_operands(a, b))
def mul(a, b): return Mul.apply(*_operands(a, b))
def div(a, b): return Div.apply(*_operands(a, b))
def pow(a, b): return Pow.apply(*_operands(a, b))
def matmul(a, b): return Matmul.apply(*_operands(a, b))
def maximum(a, b): return Maximum.apply(*_operands(a, b))
def neg(a): return Neg.apply(a)
def exp(a): return Exp.apply(a)
def log(a): return Log.apply(a)
def sqrt(a): return Sqrt.apply(a)
def tanh(a): return Tanh.apply(a)
def sigmoid(a): return Sigmoid.apply(a)
def relu(a): return Relu.apply(a)
def gelu(a, approximate="none"): return Gelu.apply(a, approximate=approximate)
def abs(a): return Abs.apply(a)
def clip(a, min=None, max=None): return Clip.apply(a, low=min, high=max)


from .ops_reduce import max, mean, sum, var  # noqa: E402,F401
from .ops_shape import (concatenate, expand, gather, getitem, masked_fill, reshape, stack,  # noqa: E402,F401
                        swapaxes, transpose, where)
