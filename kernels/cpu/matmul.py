"""Blocked, packed, parallel matrix product c = a @ b in Numba (float32 and float64).

The loop nest is the GotoBLAS/BLIS one, for each dtype with its own register tile (MR, NR):

    for k0 in range(0, K, KC):                  # a slice of the inner dimension
        pack b[k0:k0+KC, :] into panels (N/NR, KC, NR)         # parallel over panels
        for row_block in prange(M / MC):        # each thread owns whole rows of c: no races
            pack a[rows, k0:k0+KC] into panels (MC/MR, KC, MR)
            for each b panel, for each a panel:
                micro kernel: the (MR, NR) tile of c += a_panel^T @ b_panel, kept in registers

Packing zero-pads the edges, so the micro kernel always runs the full tile and only the valid
part is added to c. Per row of the tile it broadcasts one value of a and does NR/16 vector FMAs
against the current row of the b panel (measured on one Zen 4 core: 115 GFLOP/s fp32 for 4x64 and
6x64, 56 fp64 for 4x48; 32-wide tiles were fully unrolled to scalar code by LLVM and ran at 2).
Block sizes were swept at n = 512 and 1024 on 2 threads (4x64, KC 256, MC 64 was best for fp32).
Inputs of any strides: C- or F-contiguous operands are read in place (a transposed view is
C-contiguous), anything else is copied first.
"""
from __future__ import annotations

import numpy as np
from numba import prange

from ..checks import check_matmul_inputs, check_float_dtypes
from ._jit import jit, register_tile


def _build_matmul(tile_rows: int, tile_cols: int, depth_block: int, row_block: int):
    """Compile-time constants: MR = tile_rows, NR = tile_cols, KC = depth_block, MC = row_block."""
    MR, NR, KC, MC = tile_rows, tile_cols, depth_block, row_block

    @jit
    def pack_b(b, b_transposed, k0, depth, b_packed):
        """b_packed[panel, p, j] = b[k0 + p, panel * NR + j], zero past the last column."""
        cols = b.shape[0] if b_transposed else b.shape[1]
        for panel in prange(b_packed.shape[0]):
            j0 = panel * NR
            width = min(NR, cols - j0)
            for p in range(depth):
                row = b_packed[panel, p]
                for j in range(width):
                    row[j] = b[j0 + j, k0 + p] if b_transposed else b[k0 + p, j0 + j]
                for j in range(width, NR):
                    row[j] = 0

    @jit
    def pack_a(a, a_transposed, i0, rows, k0, depth, a_packed):
        """a_packed[panel, p, i] = a[i0 + panel * MR + i, k0 + p], zero past the last row."""
        for panel in range((rows + MR - 1) // MR):
            r0 = i0 + panel * MR
            height = min(MR, i0 + rows - r0)
            for p in range(depth):
                col = a_packed[panel, p]
                for i in range(height):
                    col[i] = a[k0 + p, r0 + i] if a_transposed else a[r0 + i, k0 + p]
                for i in range(height, MR):
                    col[i] = 0

    @jit
    def micro_kernel(depth, a_panel, b_panel, c, i0, j0):
        """c[i0:i0+MR, j0:j0+NR] += a_panel^T @ b_panel; a_panel (KC, MR), b_panel (KC, NR)."""
        acc = register_tile(MR, NR, c.dtype)                           # (MR, NR) in registers
        for p in range(depth):
            for i in range(MR):
                a_value = a_panel[p, i]
                for j in range(NR):
                    acc[i, j] += a_value * b_panel[p, j]
        rows = min(MR, c.shape[0] - i0)
        cols = min(NR, c.shape[1] - j0)
        if rows == MR and cols == NR:
            for i in range(MR):
                for j in range(NR):
                    c[i0 + i, j0 + j] += acc[i, j]
        else:
            for i in range(rows):
                for j in range(cols):
                    c[i0 + i, j0 + j] += acc[i, j]

    @jit(parallel=True)
    def matmul_kernel(a, a_transposed, b, b_transposed, c):
        """c (M, N) += a (M, K) @ b (K, N); a and b are C-contiguous, possibly stored transposed."""
        M, N = c.shape
        K = a.shape[0] if a_transposed else a.shape[1]
        col_panels = (N + NR - 1) // NR
        row_blocks = (M + MC - 1) // MC
        b_packed = np.empty((col_panels, KC, NR), dtype=c.dtype)
        for k0 in range(0, K, KC):
            depth = min(KC, K - k0)
            pack_b(b, b_transposed, k0, depth, b_packed)
            for block in prange(row_blocks):
                i0 = block * MC
                rows = min(MC, M - i0)
                a_packed = np.empty(((rows + MR - 1) // MR, KC, MR), dtype=c.dtype)
                pack_a(a, a_transposed, i0, rows, k0, depth, a_packed)
                for panel_b in range(col_panels):
                    for panel_a in range(a_packed.shape[0]):
                        micro_kernel(depth, a_packed[panel_a], b_packed[panel_b], c,
                                     i0 + panel_a * MR, panel_b * NR)

    return matmul_kernel


# Register tiles per dtype (measured, see the module docstring); KC x NR of b stays in L1/L2.
_KERNELS = {
    np.dtype(np.float32): _build_matmul(tile_rows=4, tile_cols=64, depth_block=256, row_block=64),
    np.dtype(np.float64): _build_matmul(tile_rows=4, tile_cols=48, depth_block=256, row_block=64),
}


def _as_c_layout(x):
    """(array, transposed): a C-contiguous array holding x, or x's transpose when x is F-ordered."""
    if x.flags.c_contiguous:
        return x, False
    if x.flags.f_contiguous:
        return x.T, True
    return np.ascontiguousarray(x), False


def matmul(a, b):
    """c = a @ b for 2-D float32/float64 a (M, K) and b (K, N) of one dtype; returns (M, N)."""
    check_matmul_inputs(a, b, name="numba.matmul")
    dtype = check_float_dtypes("numba.matmul", a=a, b=b)
    a, b = np.asarray(a), np.asarray(b)
    c = np.zeros((a.shape[0], b.shape[1]), dtype=dtype)
    if c.size == 0 or a.shape[1] == 0:
        return c
    a_c, a_transposed = _as_c_layout(a)
    b_c, b_transposed = _as_c_layout(b)
    _KERNELS[dtype](a_c, a_transposed, b_c, b_transposed, c)
    return c
