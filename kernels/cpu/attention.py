"""Flash-style attention in Numba: forward with an online softmax, backward recomputing P from lse.

Same contract and names as kernels.reference (read that first: it is the oracle these kernels are
tested against). The score matrix is never materialised: each job holds one (BLOCK_K, BLOCK_Q)
block of it at a time, so extra memory is O(block size) per thread, linear in N overall.
The block matrix products call BLAS through np.dot on contiguous 2-D blocks (scipy's OpenBLAS,
held to one thread: see blas_threads.py). Each block is kept transposed, S^T with one row per
key and one column per query, so that the softmax steps (row max, exp, row sum, dS) run along
contiguous memory across queries: plain element-wise loops that LLVM vectorises, with no
reductions to reorder. exp is kernels.cpu._jit.fast_exp (a vectorisable polynomial for float32).

Forward, per (b, h, query block), over key blocks j (causal: blocks wholly above the diagonal
are skipped, the diagonal block is masked per row):
    S_j = scale * q @ k_j^T                       (BQ, BK), masked entries excluded
    m_new = max(m, rowmax(S_j))
    alpha = exp(m - m_new)                         rescales what was summed under the old max
    P_j = exp(S_j - m_new)
    row_sum = alpha * row_sum + rowsum(P_j)
    acc = alpha * acc + P_j @ v_j                  (BQ, D)
    out = acc / row_sum, lse = m + log(row_sum)    (a row with no visible key: out 0, lse -inf)

Backward, per (b, key/value head kh) job: the job owns dk, dv of that head and dq of the
H // Hkv query heads in its group, so no two threads ever write the same element, and every sum
runs in a fixed order (same bits on every run, whatever the thread count or schedule). That
gives only B * Hkv parallel jobs; for B * Hkv == 1 a two-pass kernel runs instead (dk, dv by key
block, then dq by query block, recomputing P and dS: 2 more block products per block pair).
    for each key block j, for each query head h of the group, for each query block i:
        P = exp(scale * q_i @ k_j^T - lse_i)       recomputed, (BQ, BK)
        dv_j += P^T @ dout_i                        (BK, D)
        dP = dout_i @ v_j^T                         (BQ, BK)
        dS = P * (dP - delta_i),  delta = rowsum(dout * out)
        dq_i += scale * dS @ k_j                    (BQ, D)
        dk_j += scale * dS^T @ q_i                  (BK, D); with GQA summed over the group
"""
from __future__ import annotations

import numpy as np
from numba import prange

from ..checks import (check_attention_inputs, check_backward_shapes, check_finite, check_float_dtypes,
                      default_scale)
from ._jit import fast_exp, jit
from .blas_threads import single_threaded_blas

BLOCK_Q = 128       # query rows per block
BLOCK_K = 128       # key rows per block


@jit
def _balanced_block(index, count):
    """Visit blocks 0, n-1, 1, n-2, ...: with causal masking the costly last query blocks pair with
    the cheap first ones, so prange's contiguous chunks get equal work."""
    return index // 2 if index % 2 == 0 else count - 1 - index // 2


@jit
def _mask_block(scores_t, b, i0, j0, offset, causal, key_padding_mask):
    """In a transposed score block S^T (keys j0.., queries i0..) set what a query may not see to
    -inf: padded keys, and keys past the causal diagonal (query i sees key j iff j <= i + offset)."""
    cols, rows = scores_t.shape
    for c in range(cols):
        if key_padding_mask[b, j0 + c]:
            scores_t[c, :] = -np.inf
        elif causal:
            hidden_rows = min(rows, max(0, j0 + c - offset - i0))      # queries i0 .. i0+hidden-1
            for r in range(hidden_rows):
                scores_t[c, r] = -np.inf


@jit(parallel=True)
def _forward_kernel(q, k, v, key_padding_mask, causal, scale, out, lse):
    """q, out (B, H, Nq, D); k, v (B, Hkv, Nk, D); key_padding_mask (B, Nk); lse (B, H, Nq)."""
    batch, heads, seq_q, head_dim = q.shape
    kv_heads, seq_k = k.shape[1], k.shape[2]
    group_size = heads // kv_heads
    offset = seq_k - seq_q                                             # causal: j <= i + offset
    q_rows = q.reshape(batch * heads * seq_q, head_dim)                # (B*H*Nq, D) views
    k_rows = k.reshape(batch * kv_heads * seq_k, head_dim)
    v_rows = v.reshape(batch * kv_heads * seq_k, head_dim)
    q_blocks = (seq_q + BLOCK_Q - 1) // BLOCK_Q
    for job in prange(batch * heads * q_blocks):
        b = job // (heads * q_blocks)
        h = (job // q_blocks) % heads
        i0 = _balanced_block(job % q_blocks, q_blocks) * BLOCK_Q
        rows = min(BLOCK_Q, seq_q - i0)
        kh = h // group_size
        q_base = (b * heads + h) * seq_q + i0
        kv_base = (b * kv_heads + kh) * seq_k
        q_block = q_rows[q_base:q_base + rows] * scale                 # (BQ, D), scaled once
        row_max = np.full(rows, -np.inf, dtype=q.dtype)                # m, per query row
        row_sum = np.zeros(rows, dtype=np.float64)
        block_max = np.empty(rows, dtype=q.dtype)
        block_sum = np.empty(rows, dtype=np.float64)
        shift = np.empty(rows, dtype=q.dtype)
        alpha = np.empty(rows, dtype=q.dtype)
        acc = np.zeros((rows, head_dim), dtype=q.dtype)                # (BQ, D)
        key_end = seq_k if not causal else max(0, min(seq_k, i0 + rows + offset))
        for j0 in range(0, key_end, BLOCK_K):                          # causal: later blocks skipped
            cols = min(BLOCK_K, key_end - j0)
            k_block = k_rows[kv_base + j0:kv_base + j0 + cols]         # (BK, D)
            v_block = v_rows[kv_base + j0:kv_base + j0 + cols]
            scores_t = np.dot(k_block, q_block.T)                      # S_j^T (BK, BQ)
            _mask_block(scores_t, b, i0, j0, offset, causal, key_padding_mask)
            block_max[:] = -np.inf
            for c in range(cols):                                      # rowmax(S_j), lane per query
                for r in range(rows):
                    if scores_t[c, r] > block_max[r]:
                        block_max[r] = scores_t[c, r]
            for r in range(rows):
                m_new = max(row_max[r], block_max[r])
                shift[r] = m_new if m_new > -np.inf else 0             # a row with nothing visible
                alpha[r] = fast_exp(row_max[r] - shift[r])             # exp(m - m_new), 0 from -inf
                row_max[r] = m_new
            block_sum[:] = 0
            for c in range(cols):
                for r in range(rows):
                    p = fast_exp(scores_t[c, r] - shift[r])            # P_j = exp(S_j - m_new)
                    scores_t[c, r] = p
                    block_sum[r] += p
            for r in range(rows):
                row_sum[r] = row_sum[r] * alpha[r] + block_sum[r]
            values = np.dot(scores_t.T, v_block)                       # P_j @ v_j  (BQ, D)
            for r in range(rows):
                for d in range(head_dim):
                    acc[r, d] = acc[r, d] * alpha[r] + values[r, d]
        for r in range(rows):
            if row_sum[r] > 0:
                inverse = 1.0 / row_sum[r]
                for d in range(head_dim):
                    out[b, h, i0 + r, d] = acc[r, d] * inverse
                lse[b, h, i0 + r] = row_max[r] + np.log(row_sum[r])
            else:
                out[b, h, i0 + r, :] = 0
                lse[b, h, i0 + r] = -np.inf


@jit(parallel=True)
def _delta_and_lse(dout, out, lse):
    """delta = rowsum(dout * out) (B, H, Nq), and lse with +inf for rows that see no key, so that
    P = exp(S - lse) is 0 there."""
    batch, heads, seq_q, head_dim = dout.shape
    delta = np.empty((batch, heads, seq_q), dtype=dout.dtype)
    lse_rows = np.empty((batch, heads, seq_q), dtype=dout.dtype)
    for bh in prange(batch * heads):
        b, h = bh // heads, bh % heads
        for i in range(seq_q):
            total = 0.0
            for d in range(head_dim):
                total += dout[b, h, i, d] * out[b, h, i, d]
            delta[b, h, i] = total
            lse_rows[b, h, i] = lse[b, h, i] if lse[b, h, i] > -np.inf else np.inf
    return delta, lse_rows


@jit
def _block_gradients(q_block, k_block, v_block, dout_block, block_lse, block_delta, b, i0, j0, offset, causal,
                     key_padding_mask, scale):
    """For one (query block, key block): P^T and dS^T, both (BK, BQ)."""
    cols, rows = k_block.shape[0], q_block.shape[0]
    probs_t = np.dot(k_block, (q_block * scale).T)                     # S^T (BK, BQ)
    _mask_block(probs_t, b, i0, j0, offset, causal, key_padding_mask)
    for c in range(cols):
        for r in range(rows):
            probs_t[c, r] = fast_exp(probs_t[c, r] - block_lse[r])     # P = exp(S - lse)
    dscores_t = np.dot(v_block, dout_block.T)                          # dP^T = (dout @ v^T)^T
    for c in range(cols):
        for r in range(rows):
            dscores_t[c, r] = probs_t[c, r] * (dscores_t[c, r] - block_delta[r])   # dS = P (dP - delta)
    return probs_t, dscores_t


@jit(parallel=True)
def _backward_kernel(dout, q, k, v, delta, lse_rows, key_padding_mask, causal, scale, dq, dk, dv):
    """One pass; job = (b, kh). dq (B, H, Nq, D), dk and dv (B, Hkv, Nk, D) come in as zeros."""
    batch, heads, seq_q, head_dim = q.shape
    kv_heads, seq_k = k.shape[1], k.shape[2]
    group_size = heads // kv_heads
    offset = seq_k - seq_q
    q_rows = q.reshape(batch * heads * seq_q, head_dim)
    dout_rows = dout.reshape(batch * heads * seq_q, head_dim)
    dq_rows = dq.reshape(batch * heads * seq_q, head_dim)
    k_rows = k.reshape(batch * kv_heads * seq_k, head_dim)
    v_rows = v.reshape(batch * kv_heads * seq_k, head_dim)
    for job in prange(batch * kv_heads):
        b = job // kv_heads
        kh = job % kv_heads
        kv_base = (b * kv_heads + kh) * seq_k
        for j0 in range(0, seq_k, BLOCK_K):
            cols = min(BLOCK_K, seq_k - j0)
            k_block = k_rows[kv_base + j0:kv_base + j0 + cols]         # (BK, D)
            v_block = v_rows[kv_base + j0:kv_base + j0 + cols]
            dk_block = np.zeros((cols, head_dim), dtype=q.dtype)       # summed over the group
            dv_block = np.zeros((cols, head_dim), dtype=q.dtype)
            first_row = max(0, j0 - offset) if causal else 0           # rows above never see j0
            for h in range(kh * group_size, (kh + 1) * group_size):
                for i0 in range((first_row // BLOCK_Q) * BLOCK_Q, seq_q, BLOCK_Q):
                    rows = min(BLOCK_Q, seq_q - i0)
                    q_base = (b * heads + h) * seq_q + i0
                    q_block = q_rows[q_base:q_base + rows]             # (BQ, D)
                    dout_block = dout_rows[q_base:q_base + rows]
                    probs_t, dscores_t = _block_gradients(
                        q_block, k_block, v_block, dout_block, lse_rows[b, h, i0:i0 + rows],
                        delta[b, h, i0:i0 + rows], b, i0, j0, offset, causal, key_padding_mask, scale)
                    dv_block += np.dot(probs_t, dout_block)            # dv = P^T @ dout
                    dq_rows[q_base:q_base + rows] += np.dot(dscores_t.T, k_block)   # dq = scale dS @ k
                    dk_block += np.dot(dscores_t, q_block)             # dk = scale dS^T @ q
            for c in range(cols):
                for d in range(head_dim):
                    dk[b, kh, j0 + c, d] = dk_block[c, d] * scale
                    dv[b, kh, j0 + c, d] = dv_block[c, d]
        for h in range(kh * group_size, (kh + 1) * group_size):      # dq's scale, applied once
            for i in range(seq_q):
                for d in range(head_dim):
                    dq[b, h, i, d] *= scale


@jit(parallel=True)
def _backward_kernel_two_pass(dout, q, k, v, delta, lse_rows, key_padding_mask, causal, scale, dq, dk, dv):
    """For B * Hkv == 1, where the one-pass kernel has a single job: pass 1 gives dk, dv with one
    job per key block; pass 2 recomputes P and dS and gives dq with one job per query block.
    Every sum runs in the same order as in the one-pass kernel, so the bits are the same."""
    batch, heads, seq_q, head_dim = q.shape
    kv_heads, seq_k = k.shape[1], k.shape[2]
    group_size = heads // kv_heads
    offset = seq_k - seq_q
    q_blocks = (seq_q + BLOCK_Q - 1) // BLOCK_Q
    k_blocks = (seq_k + BLOCK_K - 1) // BLOCK_K
    for job in prange(batch * kv_heads * k_blocks):                    # pass 1: dk, dv
        b, kh = job // (kv_heads * k_blocks), (job // k_blocks) % kv_heads
        j0 = _balanced_block(job % k_blocks, k_blocks) * BLOCK_K
        cols = min(BLOCK_K, seq_k - j0)
        k_block, v_block = k[b, kh, j0:j0 + cols], v[b, kh, j0:j0 + cols]
        dk_block = np.zeros((cols, head_dim), dtype=q.dtype)
        dv_block = np.zeros((cols, head_dim), dtype=q.dtype)
        first_row = max(0, j0 - offset) if causal else 0
        for h in range(kh * group_size, (kh + 1) * group_size):
            for i0 in range((first_row // BLOCK_Q) * BLOCK_Q, seq_q, BLOCK_Q):
                rows = min(BLOCK_Q, seq_q - i0)
                q_block, dout_block = q[b, h, i0:i0 + rows], dout[b, h, i0:i0 + rows]
                probs_t, dscores_t = _block_gradients(
                    q_block, k_block, v_block, dout_block, lse_rows[b, h, i0:i0 + rows],
                    delta[b, h, i0:i0 + rows], b, i0, j0, offset, causal, key_padding_mask, scale)
                dv_block += np.dot(probs_t, dout_block)                # dv = P^T @ dout
                dk_block += np.dot(dscores_t, q_block)                 # dk = scale dS^T @ q
        for c in range(cols):
            for d in range(head_dim):
                dk[b, kh, j0 + c, d] = dk_block[c, d] * scale
                dv[b, kh, j0 + c, d] = dv_block[c, d]
    for job in prange(batch * heads * q_blocks):                       # pass 2: dq
        b, h = job // (heads * q_blocks), (job // q_blocks) % heads
        i0 = _balanced_block(job % q_blocks, q_blocks) * BLOCK_Q
        rows = min(BLOCK_Q, seq_q - i0)
        kh = h // group_size
        q_block, dout_block = q[b, h, i0:i0 + rows], dout[b, h, i0:i0 + rows]
        dq_block = np.zeros((rows, head_dim), dtype=q.dtype)
        for j0 in range(0, seq_k, BLOCK_K):
            if causal and j0 > i0 + rows - 1 + offset:                 # no row of this block sees j0
                break
            cols = min(BLOCK_K, seq_k - j0)
            probs_t, dscores_t = _block_gradients(
                q_block, k[b, kh, j0:j0 + cols], v[b, kh, j0:j0 + cols], dout_block, lse_rows[b, h, i0:i0 + rows],
                delta[b, h, i0:i0 + rows], b, i0, j0, offset, causal, key_padding_mask, scale)
            dq_block += np.dot(dscores_t.T, k[b, kh, j0:j0 + cols])    # dq = scale dS @ k
        for r in range(rows):
            for d in range(head_dim):
                dq[b, h, i0 + r, d] = dq_block[r, d] * scale


def _padding(key_padding_mask, batch: int, seq_k: int) -> np.ndarray:
    """The (B, Nk) bool mask, all False when None (one compiled variant, not two)."""
    if key_padding_mask is None:
        return np.zeros((batch, seq_k), dtype=np.bool_)
    return np.ascontiguousarray(key_padding_mask, dtype=np.bool_)


def attention_forward(q, k, v, causal: bool = False, key_padding_mask=None, scale=None):
    """Flash attention forward. Returns (out (B, H, Nq, D), lse (B, H, Nq)) in q's dtype."""
    shape = check_attention_inputs(q, k, v, key_padding_mask, name="numba.attention_forward")
    dtype = check_float_dtypes("numba.attention_forward", q=q, k=k, v=v)
    check_finite("numba.attention_forward", q=q, k=k, v=v)
    scale = dtype.type(default_scale(shape.head_dim, scale))
    q, k, v = (np.ascontiguousarray(x) for x in (q, k, v))
    out = np.zeros(q.shape, dtype=dtype)
    lse = np.full(q.shape[:3], -np.inf, dtype=dtype)
    if q.size and shape.seq_k:
        with single_threaded_blas():
            _forward_kernel(q, k, v, _padding(key_padding_mask, shape.batch, shape.seq_k), bool(causal), scale,
                            out, lse)
    return out, lse


def attention_backward(dout, q, k, v, out, lse, causal: bool = False, key_padding_mask=None, scale=None):
    """Flash attention backward. Returns (dq (B, H, Nq, D), dk, dv (B, Hkv, Nk, D))."""
    shape = check_attention_inputs(q, k, v, key_padding_mask, name="numba.attention_backward")
    dtype = check_float_dtypes("numba.attention_backward", dout=dout, q=q, k=k, v=v, out=out)
    check_backward_shapes("numba.attention_backward", q, dout=dout, out=out, lse=lse)
    check_finite("numba.attention_backward", dout=dout, q=q, k=k, v=v, out=out)
    scale = dtype.type(default_scale(shape.head_dim, scale))
    dout, q, k, v, out = (np.ascontiguousarray(x) for x in (dout, q, k, v, out))
    lse = np.ascontiguousarray(lse, dtype=dtype)
    dq = np.zeros(q.shape, dtype=dtype)
    dk = np.zeros(k.shape, dtype=dtype)
    dv = np.zeros(v.shape, dtype=dtype)
    if q.size and shape.seq_k:
        delta, lse_rows = _delta_and_lse(dout, out, lse)
        kernel = _backward_kernel if shape.batch * shape.kv_heads > 1 else _backward_kernel_two_pass
        with single_threaded_blas():
            kernel(dout, q, k, v, delta, lse_rows, _padding(key_padding_mask, shape.batch, shape.seq_k),
                   bool(causal), scale, dq, dk, dv)
    return dq, dk, dv
