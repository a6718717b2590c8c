"""Tiled matrix product C = A @ B in Triton: A (M, K), B (K, N) -> C (M, N).

Each program computes one (BLOCK_M, BLOCK_N) tile of C, walking K in BLOCK_K steps and
accumulating in fp32 (fp64 for float64 inputs):

    C[m0:m0+BM, n0:n0+BN] = sum_k A[m0:m0+BM, k:k+BK] @ B[k:k+BK, n0:n0+BN]

Grouped program order: consecutive programs take GROUP_M tile-rows of C down one tile-column
before moving right, so the A rows and B columns they read are reused while still in L2.
Edges are masked (any M, N, K); strides are arguments, so transposed and strided inputs work
without a copy.

Precision: fp16 and bf16 inputs go to the tensor cores with an fp32 accumulator; float32 uses
`input_precision` ("tf32" by default on a GPU, as cuBLAS with TF32 allowed: inputs rounded to a
10-bit mantissa, about 1e-3 relative error; pass "ieee" for true fp32). The interpreter always
computes exactly in the input precision. float64 runs `tl.dot` in fp64 (slow on GPUs).
"""
from __future__ import annotations

import triton
import triton.language as tl

from .tuning import Config, autotuned_launch, dot_upcast, interpreter_mode, size_bucket


@triton.jit
def _matmul_kernel(a_ptr, b_ptr, c_ptr, M, N, K,
                   stride_am, stride_ak, stride_bk, stride_bn, stride_cm, stride_cn,
                   ACC_DTYPE: tl.constexpr, INPUT_PRECISION: tl.constexpr, DOT_UPCAST: tl.constexpr,
                   BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
                   GROUP_M: tl.constexpr):
    # grouped program order: map the flat program id to (tile row, tile column)
    pid = tl.program_id(0)
    tiles_m = tl.cdiv(M, BLOCK_M)
    tiles_n = tl.cdiv(N, BLOCK_N)
    programs_per_group = GROUP_M * tiles_n
    group = pid // programs_per_group
    first_tile_m = group * GROUP_M
    rows_in_group = tl.minimum(tiles_m - first_tile_m, GROUP_M)
    tile_m = first_tile_m + (pid % programs_per_group) % rows_in_group
    tile_n = (pid % programs_per_group) // rows_in_group

    offs_m = tile_m * BLOCK_M + tl.arange(0, BLOCK_M)                         # (BM,)
    offs_n = tile_n * BLOCK_N + tl.arange(0, BLOCK_N)                         # (BN,)
    offs_k = tl.arange(0, BLOCK_K)                                            # (BK,)
    a_ptrs = a_ptr + offs_m[:, None] * stride_am + offs_k[None, :] * stride_ak   # (BM, BK)
    b_ptrs = b_ptr + offs_k[:, None] * stride_bk + offs_n[None, :] * stride_bn   # (BK, BN)
    row_ok = offs_m[:, None] < M
    col_ok = offs_n[None, :] < N

    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=ACC_DTYPE)
    for k_start in range(0, K, BLOCK_K):
        k_ok = (k_start + offs_k) < K
        a = tl.load(a_ptrs, mask=row_ok & k_ok[None, :], other=0.0)          # (BM, BK)
        b = tl.load(b_ptrs, mask=k_ok[:, None] & col_ok, other=0.0)          # (BK, BN)
        if DOT_UPCAST:          # interpreter only: its tl.dot cannot multiply bf16 (exact upcast)
            a = a.to(tl.float32)
            b = b.to(tl.float32)
        acc = tl.dot(a, b, acc, input_precision=INPUT_PRECISION)
        a_ptrs += BLOCK_K * stride_ak
        b_ptrs += BLOCK_K * stride_bk

    c_ptrs = c_ptr + offs_m[:, None] * stride_cm + offs_n[None, :] * stride_cn
    tl.store(c_ptrs, acc.to(c_ptr.dtype.element_ty), mask=row_ok & col_ok)


def _candidates(dtype_bytes: int) -> list[Config]:
    """Block shapes to try: one small tile under the interpreter, a sweep on a GPU."""
    if interpreter_mode():
        return [Config(dict(BLOCK_M=32, BLOCK_N=32, BLOCK_K=16, GROUP_M=4))]
    if dtype_bytes == 8:
        return [Config(dict(BLOCK_M=m, BLOCK_N=n, BLOCK_K=16, GROUP_M=8), num_warps=4, num_stages=s)
                for m, n, s in ((32, 32, 2), (64, 64, 2), (64, 32, 3))]
    if dtype_bytes == 4:
        shapes = ((128, 128, 32, 8, 3), (128, 64, 32, 4, 4), (64, 128, 32, 4, 4), (128, 256, 32, 8, 3),
                  (64, 64, 32, 4, 4))
    else:
        shapes = ((128, 256, 64, 8, 3), (256, 128, 64, 8, 3), (128, 128, 64, 8, 4), (128, 128, 64, 4, 4),
                  (128, 64, 64, 4, 4), (64, 128, 64, 4, 4), (128, 128, 32, 4, 4), (64, 64, 32, 4, 5))
    return [Config(dict(BLOCK_M=m, BLOCK_N=n, BLOCK_K=k, GROUP_M=8), num_warps=w, num_stages=s)
            for m, n, k, w, s in shapes]


def matmul_into(a, b, out, input_precision: str = "tf32"):
    """out (M, N) = a (M, K) @ b (K, N): torch tensors on the launch device, any strides.

    No validation here (the bridge does it); this is what the benchmark times."""
    import torch
    m, k = a.shape
    n = b.shape[1]
    acc_dtype = tl.float64 if a.dtype == torch.float64 else tl.float32
    precision = input_precision if a.dtype == torch.float32 else "ieee"

    def launch(config: Config):
        grid = (triton.cdiv(m, config.blocks["BLOCK_M"]) * triton.cdiv(n, config.blocks["BLOCK_N"]),)
        _matmul_kernel[grid](a, b, out, m, n, k,
                             a.stride(0), a.stride(1), b.stride(0), b.stride(1), out.stride(0), out.stride(1),
                             ACC_DTYPE=acc_dtype, INPUT_PRECISION=precision,
                             DOT_UPCAST=dot_upcast(a.dtype), **config.launch_options())

    key = (size_bucket(m), size_bucket(n), size_bucket(k), str(a.dtype), precision,
           a.stride(1) == 1, b.stride(1) == 1)
    autotuned_launch("matmul", key, _candidates(a.element_size()), launch)
    return out
