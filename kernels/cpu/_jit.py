"""Numba settings shared by the CPU kernels, and the one low-level helper they need.

    jit(parallel=False)         njit with cache=True (compile once per machine), FMA contraction
                                (fastmath={'contract'} only: full fastmath lets LLVM reorder
                                reductions), no bounds checks.
    register_tile(rows, cols, dtype)
                                a (rows, cols) scratch array on the stack. Its address is known
                                not to alias any argument, so LLVM keeps a small accumulator tile
                                in vector registers; a heap array (np.zeros) would be reloaded and
                                stored back on every step (measured: 2 vs 115 GFLOP/s on one core).

    fast_exp(x)                 exp, vectorisable for float32 (below); np.exp for float64.

With NUMBA_DISABLE_JIT=1 every kernel runs as plain Python for debugging: register_tile is then
np.zeros and fast_exp is np.exp.

Caching caveat: Numba's on-disk cache is keyed on each kernel's own source file, not on the
helpers it calls from this one. After editing a helper here, delete kernels/cpu/__pycache__
(or touch the kernel files) so that cached kernels are recompiled.
"""
from __future__ import annotations

import numba
import numpy as np
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, overload

JIT_OPTIONS = dict(cache=True, nogil=True, boundscheck=False, fastmath={"contract"})


def jit(function=None, *, parallel: bool = False):
    """numba.njit with the kernels' options; usable as @jit or @jit(parallel=True)."""
    decorate = numba.njit(parallel=parallel, **JIT_OPTIONS)
    return decorate if function is None else decorate(function)


def register_tile(rows, cols, dtype):
    """Zero-initialised (rows, cols) scratch; on the stack when jitted (rows, cols constants)."""
    return np.zeros((rows, cols), dtype=dtype)


@intrinsic
def _stack_buffer(typingctx, size, dtype):
    """Pointer to `size` elements allocated once in the function's entry block (an LLVM alloca)."""
    if not isinstance(size, types.IntegerLiteral) or not isinstance(dtype, types.DType):
        return None
    count = size.literal_value
    element = dtype.dtype

    def codegen(context, builder, signature, args):
        return cgutils.alloca_once(builder, context.get_data_type(element), size=count)

    return types.CPointer(element)(size, dtype), codegen


@overload(register_tile, inline="always")  # inlined: the alloca must live in the caller's frame
def _register_tile_jitted(rows, cols, dtype):
    if not (isinstance(rows, types.IntegerLiteral) and isinstance(cols, types.IntegerLiteral)):
        raise numba.errors.TypingError("register_tile: rows and cols must be compile-time constants")
    size = rows.literal_value * cols.literal_value
    shape = (rows.literal_value, cols.literal_value)

    def impl(rows, cols, dtype):
        tile = numba.carray(_stack_buffer(size, dtype), shape)
        tile[:, :] = 0
        return tile

    return impl


# --- exp for the softmax -------------------------------------------------------------------
# Numba has no vectorised exp here (no SVML), and the scalar libm call costs more than both block
# products of attention together. For float32 the softmax uses this one, which LLVM vectorises:
#     exp(x) = 2^n * exp(r),  n = round(x / ln 2),  r = x - n ln 2 in [-ln2/2, ln2/2]
# with ln 2 split in two parts (exact n ln2_hi), exp(r) by its degree-7 Taylor polynomial
# (truncation < 6e-9 relative, below float32's 6e-8 rounding) and 2^n built from its bits.
# x <= -87.33 (2^n below the smallest normal float) gives exactly 0, as does -inf.
_LN2_HI = 0.693145751953125         # 12 significant bits: n * _LN2_HI is exact for |n| < 2^12
_LN2_LO = 1.428606765330187e-06     # ln 2 - _LN2_HI
_LOG2_E = 1.4426950408889634
_EXP_UNDERFLOW = -87.33      # just above log(smallest normal float32) = -87.3365


def fast_exp(x):
    """exp(x); float32 uses a vectorisable polynomial when jitted (see above)."""
    return np.exp(x)


@intrinsic
def _float32_from_bits(typingctx, bits):
    if bits != types.int32:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.float32))

    return types.float32(types.int32), codegen


@overload(fast_exp, jit_options=dict(fastmath={"contract"}))
def _fast_exp_jitted(x):
    if x == types.float64:
        return lambda x: np.exp(x)
    if x != types.float32:
        return None
    ln2_hi, ln2_lo = np.float32(_LN2_HI), np.float32(_LN2_LO)
    log2_e, underflow = np.float32(_LOG2_E), np.float32(_EXP_UNDERFLOW)
    c2, c3, c4, c5, c6, c7 = (np.float32(1 / f) for f in (2, 6, 24, 120, 720, 5040))
    one, half = np.float32(1.0), np.float32(0.5)

    def impl(x):
        clamped = max(x, underflow)
        n = np.floor(clamped * log2_e + half)                          # round(x / ln 2)
        r = (clamped - n * ln2_hi) - n * ln2_lo                         # |r| <= ln2 / 2
        poly = one + r * (one + r * (c2 + r * (c3 + r * (c4 + r * (c5 + r * (c6 + r * c7))))))
        two_to_n = _float32_from_bits(np.int32((np.int32(n) + np.int32(127)) << np.int32(23)))
        return poly * two_to_n if x > underflow else np.float32(0.0)

    return impl
