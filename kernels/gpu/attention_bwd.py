"""FlashAttention-2 backward in Triton: three kernels, no atomics, so results are bit-for-bit
deterministic. Same contract as kernels/reference.py (`attention_backward`):

    (dout, q, k, v, out, lse) -> dq (B, H, Nq, D), dk, dv (B, Hkv, Nk, D)

With P = exp(S - lse) recomputed block by block from q, k and the forward's lse:

  1. _attention_bwd_preprocess   one program per (query block, b*h):
         delta = rowsum(dout * out)                          (B, H, Nq)
         lse2  = lse * log2(e), or +inf where lse = -inf     (B, H, Nq)   so that P = exp2(s - lse2) = 0
  2. _attention_bwd_dkdv_kernel  one program per (key block, b*hkv); it loops over the query heads
     of its group (grouped-query attention: dk, dv summed over the group in a fixed order) and
     over their query blocks:
         P^T  = exp2(scale*log2(e) * k @ q^T - lse2)         (BN, BM)
         dv  += P^T @ dout                                   (BN, D)
         dP^T = v @ dout^T                                   (BN, BM)
         dS^T = P^T * (dP^T - delta)                         (BN, BM)
         dk  += dS^T @ q;  finally dk *= scale               (BN, D)
  3. _attention_bwd_dq_kernel    one program per (query block, b*h), looping over key blocks:
         dq  += dS @ k;  finally dq *= scale                 (BM, D)

Each product is computed where its rows live, so every output element is written by exactly
one program. Masks match the forward: causal bottom-right (key j visible to query i iff
j <= i + Nk - Nq), key padding, ragged Nq/Nk edges, head dims padded to a power of two. Blocks
that are fully visible skip the element-wise causal mask, as in the forward.
"""
from __future__ import annotations

import triton
import triton.language as tl

from .attention_fwd import block_d_for, scale_constants
from .tuning import Config, autotuned_launch, dot_upcast, interpreter_mode, size_bucket


@triton.jit
def _attention_bwd_preprocess(out_ptr, dout_ptr, lse_ptr, delta_ptr, lse2_ptr, consts_ptr,
                              stride_ob, stride_oh, stride_om, stride_od,
                              stride_db, stride_dh, stride_dm, stride_dd,
                              stride_lb, stride_lh, stride_lm,
                              heads, seq_q, head_dim,
                              ACC_DTYPE: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_D: tl.constexpr):
    block_m = tl.program_id(0)
    batch_head = tl.program_id(1)
    batch = batch_head // heads
    head = batch_head % heads
    offs_m = block_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    m_ok = offs_m < seq_q
    tile_ok = m_ok[:, None] & (offs_d < head_dim)[None, :]
    out = tl.load(out_ptr + batch * stride_ob + head * stride_oh
                  + offs_m[:, None] * stride_om + offs_d[None, :] * stride_od, mask=tile_ok, other=0.0)
    dout = tl.load(dout_ptr + batch * stride_db + head * stride_dh
                   + offs_m[:, None] * stride_dm + offs_d[None, :] * stride_dd, mask=tile_ok, other=0.0)
    delta = tl.sum(out.to(ACC_DTYPE) * dout.to(ACC_DTYPE), 1)                 # (BM,)
    lse = tl.load(lse_ptr + batch * stride_lb + head * stride_lh + offs_m * stride_lm,
                  mask=m_ok, other=float("-inf")).to(ACC_DTYPE)
    log2e = tl.load(consts_ptr + 3)
    lse2 = tl.where(lse == float("-inf"), float("inf"), lse * log2e)          # no visible key: P = 0
    tl.store(delta_ptr + batch_head * seq_q + offs_m, delta, mask=m_ok)
    tl.store(lse2_ptr + batch_head * seq_q + offs_m, lse2, mask=m_ok)


@triton.jit
def _dkdv_query_blocks(dk, dv, k, v, q_head, dout_head, lse2_row, delta_row, query_start, query_end,
                       offs_n, key_ok, offs_d, seq_q, head_dim, causal_offset, qk_scale,
                       stride_qm, stride_qd, stride_dm, stride_dd,
                       ELEMENT_MASK: tl.constexpr,
                       INPUT_PRECISION: tl.constexpr, DOT_UPCAST: tl.constexpr, BLOCK_M: tl.constexpr):
    """Add the contributions of query blocks [query_start, query_end) of one head to dk, dv."""
    d_ok = offs_d < head_dim
    for start_m in range(query_start, query_end, BLOCK_M):
        offs_m = start_m + tl.arange(0, BLOCK_M)                              # (BM,)
        m_ok = offs_m < seq_q
        tile_ok = m_ok[:, None] & d_ok[None, :]
        q = tl.load(q_head + offs_m[:, None] * stride_qm + offs_d[None, :] * stride_qd,
                    mask=tile_ok, other=0.0)                                  # (BM, BD)
        dout = tl.load(dout_head + offs_m[:, None] * stride_dm + offs_d[None, :] * stride_dd,
                       mask=tile_ok, other=0.0)                               # (BM, BD)
        lse2 = tl.load(lse2_row + offs_m, mask=m_ok, other=float("inf"))      # (BM,) rows past Nq: P = 0
        delta = tl.load(delta_row + offs_m, mask=m_ok, other=0.0)             # (BM,)
        if DOT_UPCAST:
            q = q.to(tl.float32)
            dout = dout.to(tl.float32)
        scores_t = tl.dot(k, tl.trans(q), input_precision=INPUT_PRECISION).to(dk.dtype) * qk_scale  # (BN, BM)
        if ELEMENT_MASK:
            visible = offs_n[:, None] <= offs_m[None, :] + causal_offset
            scores_t = tl.where(visible, scores_t, float("-inf"))
        scores_t = tl.where(key_ok[:, None], scores_t, float("-inf"))         # padded keys, keys past Nk
        probs_t = tl.exp2(scores_t - lse2[None, :])                           # (BN, BM), 0 where masked
        dv += tl.dot(probs_t.to(dout.dtype), dout, input_precision=INPUT_PRECISION).to(dv.dtype)
        dprobs_t = tl.dot(v, tl.trans(dout), input_precision=INPUT_PRECISION).to(dk.dtype)  # (BN, BM)
        dscores_t = probs_t * (dprobs_t - delta[None, :])                     # (BN, BM)
        dk += tl.dot(dscores_t.to(q.dtype), q, input_precision=INPUT_PRECISION).to(dk.dtype)
    return dk, dv


@triton.jit
def _attention_bwd_dkdv_kernel(q_ptr, k_ptr, v_ptr, dout_ptr, lse2_ptr, delta_ptr, mask_ptr, consts_ptr,
                               dk_ptr, dv_ptr,
                               stride_qb, stride_qh, stride_qm, stride_qd,
                               stride_kb, stride_kh, stride_kn, stride_kd,
                               stride_vb, stride_vh, stride_vn, stride_vd,
                               stride_db, stride_dh, stride_dm, stride_dd,
                               stride_mb, stride_mn,
                               heads, kv_heads, seq_q, seq_k, head_dim, causal_offset,
                               CAUSAL: tl.constexpr, HAS_MASK: tl.constexpr, ACC_DTYPE: tl.constexpr,
                               INPUT_PRECISION: tl.constexpr, DOT_UPCAST: tl.constexpr,
                               BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr):
    block_n = tl.program_id(0)
    batch_kv_head = tl.program_id(1)
    batch = batch_kv_head // kv_heads
    kv_head = batch_kv_head % kv_heads
    group_size = heads // kv_heads
    qk_scale = tl.load(consts_ptr)
    scale = tl.load(consts_ptr + 2)

    start_n = block_n * BLOCK_N
    offs_n = start_n + tl.arange(0, BLOCK_N)                                  # (BN,)
    offs_d = tl.arange(0, BLOCK_D)
    n_ok = offs_n < seq_k
    tile_ok = n_ok[:, None] & (offs_d < head_dim)[None, :]
    k = tl.load(k_ptr + batch * stride_kb + kv_head * stride_kh
                + offs_n[:, None] * stride_kn + offs_d[None, :] * stride_kd, mask=tile_ok, other=0.0)
    v = tl.load(v_ptr + batch * stride_vb + kv_head * stride_vh
                + offs_n[:, None] * stride_vn + offs_d[None, :] * stride_vd, mask=tile_ok, other=0.0)
    if DOT_UPCAST:
        k = k.to(tl.float32)
        v = v.to(tl.float32)
    key_ok = n_ok
    if HAS_MASK:
        padded = tl.load(mask_ptr + batch * stride_mb + offs_n * stride_mn, mask=n_ok, other=1)
        key_ok = key_ok & (padded == 0)

    # query blocks [query_start, full_start) cross the causal diagonal; from full_start on, every
    # query row sees every key of this block. Without causal all blocks are full.
    if CAUSAL:
        query_start = (tl.maximum(start_n - causal_offset, 0) // BLOCK_M) * BLOCK_M
        first_full_row = tl.maximum(start_n + BLOCK_N - 1 - causal_offset, 0)
        full_start = tl.maximum(tl.cdiv(first_full_row, BLOCK_M) * BLOCK_M, query_start)
    else:
        query_start = 0
        full_start = 0
    diagonal_end = tl.minimum(full_start, seq_q)

    dk = tl.zeros((BLOCK_N, BLOCK_D), dtype=ACC_DTYPE)
    dv = tl.zeros((BLOCK_N, BLOCK_D), dtype=ACC_DTYPE)
    for member in range(0, group_size):                  # the query heads sharing this kv head, in order
        head = kv_head * group_size + member
        q_head = q_ptr + batch * stride_qb + head * stride_qh
        dout_head = dout_ptr + batch * stride_db + head * stride_dh
        row = (batch * heads + head) * seq_q
        dk, dv = _dkdv_query_blocks(dk, dv, k, v, q_head, dout_head, lse2_ptr + row, delta_ptr + row,
                                    query_start, diagonal_end, offs_n, key_ok, offs_d, seq_q, head_dim,
                                    causal_offset, qk_scale, stride_qm, stride_qd, stride_dm, stride_dd,
                                    True, INPUT_PRECISION, DOT_UPCAST, BLOCK_M)
        dk, dv = _dkdv_query_blocks(dk, dv, k, v, q_head, dout_head, lse2_ptr + row, delta_ptr + row,
                                    full_start, seq_q, offs_n, key_ok, offs_d, seq_q, head_dim,
                                    causal_offset, qk_scale, stride_qm, stride_qd, stride_dm, stride_dd,
                                    False, INPUT_PRECISION, DOT_UPCAST, BLOCK_M)
    dk = dk * scale
    out_offsets = batch_kv_head * seq_k * head_dim + offs_n[:, None] * head_dim + offs_d[None, :]
    tl.store(dk_ptr + out_offsets, dk.to(dk_ptr.dtype.element_ty), mask=tile_ok)   # dk, dv contiguous
    tl.store(dv_ptr + out_offsets, dv.to(dv_ptr.dtype.element_ty), mask=tile_ok)


@triton.jit
def _dq_key_blocks(dq, q, dout, lse2, delta, k_head, v_head, mask_row, key_start, key_end,
                   offs_m, offs_d, seq_k, head_dim, causal_offset, qk_scale,
                   stride_kn, stride_kd, stride_vn, stride_vd, stride_mn,
                   ELEMENT_MASK: tl.constexpr, CAUSAL: tl.constexpr, HAS_MASK: tl.constexpr,
                   INPUT_PRECISION: tl.constexpr, DOT_UPCAST: tl.constexpr, BLOCK_N: tl.constexpr):
    """Add the contributions of key blocks [key_start, key_end) to one query block's dq."""
    d_ok = offs_d < head_dim
    for start_n in range(key_start, key_end, BLOCK_N):
        offs_n = start_n + tl.arange(0, BLOCK_N)                              # (BN,)
        n_ok = offs_n < seq_k
        k = tl.load(k_head + offs_n[:, None] * stride_kn + offs_d[None, :] * stride_kd,
                    mask=n_ok[:, None] & d_ok[None, :], other=0.0)            # (BN, BD)
        v_t = tl.load(v_head + offs_d[:, None] * stride_vd + offs_n[None, :] * stride_vn,
                      mask=d_ok[:, None] & n_ok[None, :], other=0.0)          # (BD, BN) = v^T
        if DOT_UPCAST:
            k = k.to(tl.float32)
            v_t = v_t.to(tl.float32)
        scores = tl.dot(q, tl.trans(k), input_precision=INPUT_PRECISION).to(dq.dtype) * qk_scale   # (BM, BN)
        if ELEMENT_MASK:
            visible = n_ok[None, :]
            if CAUSAL:
                visible = visible & (offs_n[None, :] <= offs_m[:, None] + causal_offset)
            scores = tl.where(visible, scores, float("-inf"))
        if HAS_MASK:
            padded = tl.load(mask_row + offs_n * stride_mn, mask=n_ok, other=1)
            scores = tl.where((padded == 0)[None, :], scores, float("-inf"))
        probs = tl.exp2(scores - lse2[:, None])                               # (BM, BN), 0 where masked
        dprobs = tl.dot(dout, v_t, input_precision=INPUT_PRECISION).to(dq.dtype)       # (BM, BN)
        dscores = probs * (dprobs - delta[:, None])                           # (BM, BN)
        dq += tl.dot(dscores.to(k.dtype), k, input_precision=INPUT_PRECISION).to(dq.dtype)
    return dq


@triton.jit
def _attention_bwd_dq_kernel(q_ptr, k_ptr, v_ptr, dout_ptr, lse2_ptr, delta_ptr, mask_ptr, consts_ptr, dq_ptr,
                             stride_qb, stride_qh, stride_qm, stride_qd,
                             stride_kb, stride_kh, stride_kn, stride_kd,
                             stride_vb, stride_vh, stride_vn, stride_vd,
                             stride_db, stride_dh, stride_dm, stride_dd,
                             stride_mb, stride_mn,
                             heads, group_size, seq_q, seq_k, head_dim, causal_offset,
                             CAUSAL: tl.constexpr, HAS_MASK: tl.constexpr, ACC_DTYPE: tl.constexpr,
                             INPUT_PRECISION: tl.constexpr, DOT_UPCAST: tl.constexpr,
                             BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr):
    block_m = tl.program_id(0)
    if CAUSAL:
        block_m = tl.num_programs(0) - 1 - block_m
    batch_head = tl.program_id(1)
    batch = batch_head // heads
    head = batch_head % heads
    kv_head = head // group_size
    qk_scale = tl.load(consts_ptr)
    scale = tl.load(consts_ptr + 2)

    start_m = block_m * BLOCK_M
    offs_m = start_m + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    m_ok = offs_m < seq_q
    tile_ok = m_ok[:, None] & (offs_d < head_dim)[None, :]
    q = tl.load(q_ptr + batch * stride_qb + head * stride_qh
                + offs_m[:, None] * stride_qm + offs_d[None, :] * stride_qd, mask=tile_ok, other=0.0)
    dout = tl.load(dout_ptr + batch * stride_db + head * stride_dh
                   + offs_m[:, None] * stride_dm + offs_d[None, :] * stride_dd, mask=tile_ok, other=0.0)
    if DOT_UPCAST:
        q = q.to(tl.float32)
        dout = dout.to(tl.float32)
    lse2 = tl.load(lse2_ptr + batch_head * seq_q + offs_m, mask=m_ok, other=float("inf"))
    delta = tl.load(delta_ptr + batch_head * seq_q + offs_m, mask=m_ok, other=0.0)
    k_head = k_ptr + batch * stride_kb + kv_head * stride_kh
    v_head = v_ptr + batch * stride_vb + kv_head * stride_vh
    mask_row = mask_ptr + batch * stride_mb

    if CAUSAL:                                                                # same key ranges as the forward
        full_end = tl.maximum(tl.minimum(seq_k, start_m + causal_offset + 1), 0)
        key_end = tl.maximum(tl.minimum(seq_k, start_m + BLOCK_M + causal_offset), 0)
    else:
        full_end = seq_k
        key_end = seq_k
    unmasked_end = (full_end // BLOCK_N) * BLOCK_N
    dq = tl.zeros((BLOCK_M, BLOCK_D), dtype=ACC_DTYPE)
    dq = _dq_key_blocks(dq, q, dout, lse2, delta, k_head, v_head, mask_row, 0, unmasked_end,
                        offs_m, offs_d, seq_k, head_dim, causal_offset, qk_scale,
                        stride_kn, stride_kd, stride_vn, stride_vd, stride_mn,
                        False, CAUSAL, HAS_MASK, INPUT_PRECISION, DOT_UPCAST, BLOCK_N)
    dq = _dq_key_blocks(dq, q, dout, lse2, delta, k_head, v_head, mask_row, unmasked_end, key_end,
                        offs_m, offs_d, seq_k, head_dim, causal_offset, qk_scale,
                        stride_kn, stride_kd, stride_vn, stride_vd, stride_mn,
                        True, CAUSAL, HAS_MASK, INPUT_PRECISION, DOT_UPCAST, BLOCK_N)
    dq = dq * scale
    tl.store(dq_ptr + batch_head * seq_q * head_dim + offs_m[:, None] * head_dim + offs_d[None, :],
             dq.to(dq_ptr.dtype.element_ty), mask=tile_ok)                   # dq contiguous


def backward_candidates(block_d: int, dtype_bytes: int) -> list[Config]:
    if interpreter_mode():
        return [Config(dict(BLOCK_M=16, BLOCK_N=16))]
    if dtype_bytes == 8:
        return [Config(dict(BLOCK_M=16, BLOCK_N=32), num_warps=4, num_stages=1)]
    if block_d >= 256 or dtype_bytes == 4:
        shapes = [(32, 32, 4, 1), (32, 64, 4, 2), (64, 32, 4, 2), (16, 32, 4, 1)]
    else:
        shapes = [(64, 64, 4, 2), (32, 64, 4, 3), (32, 128, 4, 3), (128, 32, 4, 3), (64, 128, 8, 2),
                  (128, 64, 8, 2)]
    return [Config(dict(BLOCK_M=m, BLOCK_N=n), num_warps=w, num_stages=s) for m, n, w, s in shapes]


def flash_attention_backward(dout, q, k, v, out, lse, key_padding_mask_u8, causal: bool, scale: float,
                             input_precision: str = "ieee"):
    """dq, dk, dv: torch tensors on the launch device, any strides (dout may be non-contiguous).

    No validation here (the bridge does it); this is what the benchmark times."""
    import math

    import torch
    batch, heads, seq_q, head_dim = q.shape
    kv_heads, seq_k = k.shape[1], k.shape[2]
    is_fp64 = q.dtype == torch.float64
    acc_torch = torch.float64 if is_fp64 else torch.float32
    acc_dtype = tl.float64 if is_fp64 else tl.float32
    consts = torch.cat([scale_constants(scale, acc_torch, q.device),
                        torch.tensor([scale, math.log2(math.e)], dtype=acc_torch, device=q.device)])
    delta = torch.empty((batch, heads, seq_q), dtype=acc_torch, device=q.device)
    lse2 = torch.empty_like(delta)
    dq = torch.empty(q.shape, dtype=q.dtype, device=q.device)
    dk = torch.empty(k.shape, dtype=k.dtype, device=q.device)
    dv = torch.empty(v.shape, dtype=v.dtype, device=q.device)
    has_mask = key_padding_mask_u8 is not None
    mask = key_padding_mask_u8 if has_mask else consts
    mask_strides = (mask.stride(0), mask.stride(1)) if has_mask else (0, 0)
    block_d = block_d_for(head_dim)
    precision = input_precision if q.dtype == torch.float32 else "ieee"
    common = dict(CAUSAL=bool(causal), HAS_MASK=has_mask, ACC_DTYPE=acc_dtype, INPUT_PRECISION=precision,
                  DOT_UPCAST=dot_upcast(q.dtype), BLOCK_D=block_d)

    pre_block = 16 if interpreter_mode() else 64
    _attention_bwd_preprocess[(triton.cdiv(seq_q, pre_block), batch * heads)](
        out, dout, lse, delta, lse2, consts, *out.stride(), *dout.stride(), *lse.stride(),
        heads, seq_q, head_dim, ACC_DTYPE=acc_dtype, BLOCK_M=pre_block, BLOCK_D=block_d)

    strides = (*q.stride(), *k.stride(), *v.stride(), *dout.stride(), *mask_strides)

    def launch_dkdv(config: Config):
        grid = (triton.cdiv(seq_k, config.blocks["BLOCK_N"]), batch * kv_heads)
        _attention_bwd_dkdv_kernel[grid](q, k, v, dout, lse2, delta, mask, consts, dk, dv, *strides,
                                         heads, kv_heads, seq_q, seq_k, head_dim, seq_k - seq_q,
                                         **common, **config.launch_options())

    def launch_dq(config: Config):
        grid = (triton.cdiv(seq_q, config.blocks["BLOCK_M"]), batch * heads)
        _attention_bwd_dq_kernel[grid](q, k, v, dout, lse2, delta, mask, consts, dq, *strides,
                                       heads, heads // kv_heads, seq_q, seq_k, head_dim, seq_k - seq_q,
                                       **common, **config.launch_options())

    key = (size_bucket(batch * heads), heads // kv_heads, size_bucket(seq_q), size_bucket(seq_k), block_d,
           str(q.dtype), bool(causal), has_mask, precision)
    candidates = backward_candidates(block_d, q.element_size())
    autotuned_launch("attention_bwd_dkdv", key, candidates, launch_dkdv)
    autotuned_launch("attention_bwd_dq", key, candidates, launch_dq)
    return dq, dk, dv
