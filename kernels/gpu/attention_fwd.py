"""FlashAttention-2 forward in Triton. Same contract as kernels/reference.py:

    q (B, H, Nq, D), k, v (B, Hkv, Nk, D), key_padding_mask (B, Nk) bool (True = ignore)
    -> out (B, H, Nq, D), lse (B, H, Nq) in natural log (-inf for a row with no visible key)

One program per (query block of BLOCK_M rows, batch * head). It keeps its q block in registers
and streams the key/value blocks of its kv head (h // group_size: grouped-query attention),
with the online softmax in base 2 (scale * log2(e) folded into one multiply):

    s    = (q @ k^T) * scale * log2(e)              (BM, BN), masked entries -inf
    m'   = max(m, rowmax(s))                        running row max   (BM,)
    p    = exp2(s - m')                             (BM, BN)
    l'   = l * exp2(m - m') + rowsum(p)             running row sum   (BM,)
    acc' = acc * exp2(m - m') + p @ v               (BM, D)
  finally out = acc / l, lse = (m + log2(l)) * ln(2).

Key blocks come in two stages: blocks every row of the query block sees in full (no causal or
edge mask to compute; the padding mask still applies) and then the blocks on the causal
diagonal and the ragged end of Nk, masked element by element. Causal is bottom-right aligned:
query i sees key j <= i + (Nk - Nq). Head dims are padded to a power of two (at least 16, the
smallest tl.dot) and masked. fp16/bf16 inputs: p is cast to the input dtype for p @ v and the
accumulators stay fp32; fp32 inputs use `input_precision` for the two products; float64 inputs
run entirely in fp64.
"""
from __future__ import annotations

import math

import triton
import triton.language as tl

from .tuning import Config, autotuned_launch, dot_upcast, interpreter_mode, size_bucket


@triton.jit
def _fwd_key_blocks(acc, row_max, row_sum, q, k_ptr, v_ptr, mask_ptr, key_start, key_end,
                    offs_m, offs_d, seq_k, head_dim, causal_offset, qk_scale,
                    stride_kn, stride_kd, stride_vn, stride_vd, stride_mn,
                    ELEMENT_MASK: tl.constexpr, CAUSAL: tl.constexpr, HAS_MASK: tl.constexpr,
                    INPUT_PRECISION: tl.constexpr, DOT_UPCAST: tl.constexpr,
                    BLOCK_N: tl.constexpr):
    """Fold key blocks [key_start, key_end) into (acc, row_max, row_sum); ELEMENT_MASK adds the
    causal and Nk-edge masks (not needed where the whole block is visible)."""
    d_ok = offs_d < head_dim                                                  # (BD,)
    for start_n in range(key_start, key_end, BLOCK_N):
        offs_n = start_n + tl.arange(0, BLOCK_N)                              # (BN,)
        n_ok = offs_n < seq_k
        k_t = tl.load(k_ptr + offs_d[:, None] * stride_kd + offs_n[None, :] * stride_kn,
                      mask=d_ok[:, None] & n_ok[None, :], other=0.0)          # (BD, BN) = k^T
        v = tl.load(v_ptr + offs_n[:, None] * stride_vn + offs_d[None, :] * stride_vd,
                    mask=n_ok[:, None] & d_ok[None, :], other=0.0)            # (BN, BD)
        if DOT_UPCAST:
            k_t = k_t.to(tl.float32)
        scores = tl.dot(q, k_t, input_precision=INPUT_PRECISION).to(acc.dtype) * qk_scale   # (BM, BN)
        visible = tl.full(scores.shape, 1, tl.int1)
        if ELEMENT_MASK:
            visible = visible & n_ok[None, :]
            if CAUSAL:
                visible = visible & (offs_n[None, :] <= offs_m[:, None] + causal_offset)
        if HAS_MASK:
            padded = tl.load(mask_ptr + offs_n * stride_mn, mask=n_ok, other=1)
            visible = visible & (padded == 0)[None, :]
        scores = tl.where(visible, scores, float("-inf"))
        new_max = tl.maximum(row_max, tl.max(scores, 1))                      # (BM,)
        safe_max = tl.where(new_max == float("-inf"), 0.0, new_max).to(acc.dtype)   # no key yet: 0
        correction = tl.exp2(row_max - safe_max)                              # (BM,)
        probs = tl.exp2(scores - safe_max[:, None])                           # (BM, BN)
        row_sum = row_sum * correction + tl.sum(probs, 1)
        if DOT_UPCAST:
            acc = acc * correction[:, None] + tl.dot(probs, v.to(tl.float32), input_precision=INPUT_PRECISION)
        else:
            acc = acc * correction[:, None] + tl.dot(probs.to(v.dtype), v, input_precision=INPUT_PRECISION).to(acc.dtype)
        row_max = new_max
    return acc, row_max, row_sum


@triton.jit
def _attention_fwd_kernel(q_ptr, k_ptr, v_ptr, out_ptr, lse_ptr, mask_ptr, consts_ptr,
                          stride_qb, stride_qh, stride_qm, stride_qd,
                          stride_kb, stride_kh, stride_kn, stride_kd,
                          stride_vb, stride_vh, stride_vn, stride_vd,
                          stride_ob, stride_oh, stride_om, stride_od,
                          stride_mb, stride_mn,
                          heads, group_size, seq_q, seq_k, head_dim, causal_offset,
                          CAUSAL: tl.constexpr, HAS_MASK: tl.constexpr, ACC_DTYPE: tl.constexpr,
                          INPUT_PRECISION: tl.constexpr, DOT_UPCAST: tl.constexpr,
                          BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr):
    query_blocks = tl.num_programs(0)
    block_m = tl.program_id(0)
    if CAUSAL:                                   # the longest (bottom) query blocks launch first
        block_m = query_blocks - 1 - block_m
    batch_head = tl.program_id(1)
    batch = batch_head // heads
    head = batch_head % heads
    kv_head = head // group_size                                              # grouped-query attention
    qk_scale = tl.load(consts_ptr)                                            # scale * log2(e)
    ln2 = tl.load(consts_ptr + 1)

    start_m = block_m * BLOCK_M
    offs_m = start_m + tl.arange(0, BLOCK_M)                                  # (BM,)
    offs_d = tl.arange(0, BLOCK_D)                                            # (BD,)
    m_ok = offs_m < seq_q
    d_ok = offs_d < head_dim
    q_block = q_ptr + batch * stride_qb + head * stride_qh
    q = tl.load(q_block + offs_m[:, None] * stride_qm + offs_d[None, :] * stride_qd,
                mask=m_ok[:, None] & d_ok[None, :], other=0.0)                # (BM, BD)
    if DOT_UPCAST:
        q = q.to(tl.float32)
    k_head = k_ptr + batch * stride_kb + kv_head * stride_kh
    v_head = v_ptr + batch * stride_vb + kv_head * stride_vh
    mask_row = mask_ptr + batch * stride_mb

    acc = tl.zeros((BLOCK_M, BLOCK_D), dtype=ACC_DTYPE)
    row_max = tl.full((BLOCK_M,), float("-inf"), dtype=ACC_DTYPE)
    row_sum = tl.zeros((BLOCK_M,), dtype=ACC_DTYPE)

    # keys [0, full_end) are visible to every row of this block; the last row sees up to key_end
    if CAUSAL:
        full_end = tl.maximum(tl.minimum(seq_k, start_m + causal_offset + 1), 0)
        key_end = tl.maximum(tl.minimum(seq_k, start_m + BLOCK_M + causal_offset), 0)
    else:
        full_end = seq_k
        key_end = seq_k
    unmasked_end = (full_end // BLOCK_N) * BLOCK_N
    acc, row_max, row_sum = _fwd_key_blocks(
        acc, row_max, row_sum, q, k_head, v_head, mask_row, 0, unmasked_end,
        offs_m, offs_d, seq_k, head_dim, causal_offset, qk_scale,
        stride_kn, stride_kd, stride_vn, stride_vd, stride_mn,
        False, CAUSAL, HAS_MASK, INPUT_PRECISION, DOT_UPCAST, BLOCK_N)
    acc, row_max, row_sum = _fwd_key_blocks(
        acc, row_max, row_sum, q, k_head, v_head, mask_row, unmasked_end, key_end,
        offs_m, offs_d, seq_k, head_dim, causal_offset, qk_scale,
        stride_kn, stride_kd, stride_vn, stride_vd, stride_mn,
        True, CAUSAL, HAS_MASK, INPUT_PRECISION, DOT_UPCAST, BLOCK_N)

    has_key = row_sum > 0                                                     # False: fully masked row
    out = acc / tl.where(has_key, row_sum, 1.0)[:, None]                      # acc is 0 there: out 0
    lse = tl.where(has_key, (row_max + tl.log2(tl.where(has_key, row_sum, 1.0))) * ln2, float("-inf"))
    out_block = out_ptr + batch * stride_ob + head * stride_oh
    tl.store(out_block + offs_m[:, None] * stride_om + offs_d[None, :] * stride_od,
             out.to(out_ptr.dtype.element_ty), mask=m_ok[:, None] & d_ok[None, :])
    tl.store(lse_ptr + batch_head * seq_q + offs_m, lse.to(lse_ptr.dtype.element_ty), mask=m_ok)


def block_d_for(head_dim: int) -> int:
    """Head dim padded to a power of two, at least 16 (the smallest tl.dot)."""
    return max(16, triton.next_power_of_2(head_dim))


def forward_candidates(block_d: int, dtype_bytes: int) -> list[Config]:
    if interpreter_mode():
        return [Config(dict(BLOCK_M=16, BLOCK_N=16))]
    if dtype_bytes == 8:
        return [Config(dict(BLOCK_M=32, BLOCK_N=16 if block_d > 64 else 32), num_warps=4, num_stages=1)]
    shapes = [(128, 64, 8, 3), (128, 64, 4, 3), (64, 64, 4, 3), (128, 32, 4, 4), (64, 32, 4, 4),
              (128, 128, 8, 3)]
    if block_d >= 256 or dtype_bytes == 4:
        shapes = [(64, 32, 4, 2), (64, 64, 4, 2), (128, 32, 8, 2), (32, 32, 4, 2)]
    return [Config(dict(BLOCK_M=m, BLOCK_N=n), num_warps=w, num_stages=s) for m, n, w, s in shapes]


def scale_constants(scale: float, dtype, device):
    """[scale * log2(e), ln(2)] as a tensor in the accumulator dtype: scalar kernel arguments
    would be rounded to fp32, which float64 inputs must not be."""
    import torch
    return torch.tensor([scale * math.log2(math.e), math.log(2.0)], dtype=dtype, device=device)


def flash_attention_forward(q, k, v, key_padding_mask_u8, causal: bool, scale: float,
                            input_precision: str = "ieee"):
    """out, lse = attention(q, k, v): torch tensors on the launch device, any strides.

    key_padding_mask_u8: (B, Nk) uint8 (1 = ignore) or None. No validation here (the bridge
    does it); this is what the benchmark times."""
    import torch
    batch, heads, seq_q, head_dim = q.shape
    kv_heads, seq_k = k.shape[1], k.shape[2]
    is_fp64 = q.dtype == torch.float64
    acc_torch = torch.float64 if is_fp64 else torch.float32
    out = torch.empty_like(q)
    lse = torch.empty((batch, heads, seq_q), dtype=acc_torch, device=q.device)
    consts = scale_constants(scale, acc_torch, q.device)
    has_mask = key_padding_mask_u8 is not None
    mask = key_padding_mask_u8 if has_mask else consts
    mask_strides = (mask.stride(0), mask.stride(1)) if has_mask else (0, 0)
    block_d = block_d_for(head_dim)
    precision = input_precision if q.dtype == torch.float32 else "ieee"

    def launch(config: Config):
        grid = (triton.cdiv(seq_q, config.blocks["BLOCK_M"]), batch * heads)
        _attention_fwd_kernel[grid](
            q, k, v, out, lse, mask, consts,
            *q.stride(), *k.stride(), *v.stride(), *out.stride(), *mask_strides,
            heads, heads // kv_heads, seq_q, seq_k, head_dim, seq_k - seq_q,
            CAUSAL=bool(causal), HAS_MASK=has_mask, ACC_DTYPE=tl.float64 if is_fp64 else tl.float32,
            INPUT_PRECISION=precision, DOT_UPCAST=dot_upcast(q.dtype), BLOCK_D=block_d,
            **config.launch_options())

    key = (size_bucket(batch * heads), size_bucket(seq_q), size_bucket(seq_k), block_d, str(q.dtype),
           bool(causal), has_mask, precision)
    autotuned_launch("attention_fwd", key, forward_candidates(block_d, q.element_size()), launch)
    return out, lse
