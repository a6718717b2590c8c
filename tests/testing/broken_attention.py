"""A blocked, online-softmax attention (FlashAttention-2 loop structure, in NumPy, computing in
the inputs' dtype) with switchable bugs, and the library of broken kernels built from it.

    blocked_forward(q, k, v, causal, key_padding_mask, scale, block_k, bugs) -> (out, lse)
    blocked_backward(dout, q, k, v, out, lse, causal, key_padding_mask, scale, block_k, bugs) -> (dq, dk, dv)

Forward, per key block Kb, Vb (running max m, running sum l, accumulator acc):
    S = scale * q @ Kb^T (masked = -inf)   m' = max(m, rowmax S)   P = exp(S - m')
    l = exp(m - m') * l + rowsum P         acc = exp(m - m') * acc + P @ Vb     m = m'
    out = acc / l, lse = m + log l   (a row with no visible key: out 0, lse -inf)
Backward, per key block: P = exp(S - lse), dV = P^T dout, dP = dout Vb^T,
    dS = P * (dP - delta) with delta = rowsum(dout * out), dq += scale dS Kb, dK = scale dS^T q.

Every function below named `broken_*` carries exactly one bug; `correct_*` are right but round
differently from the reference (block sizes, visiting order, where the scale is applied).
"""
from __future__ import annotations

import math

import numpy as np


def _visible(batch, seq_q, seq_k, causal, key_padding_mask, bugs):
    cols = np.arange(seq_k)[None, :]
    rows = np.arange(seq_q)[:, None]
    allowed = np.ones((batch, 1, seq_q, seq_k), bool)
    if causal:
        offset = 0 if "top-left corner" in bugs else seq_k - seq_q
        allowed &= ((cols < rows + offset) if "strict causal" in bugs else (cols <= rows + offset))[None, None]
    if key_padding_mask is not None:
        mask = np.asarray(key_padding_mask, bool)
        if "mask of batch row 0 for all" in bugs:
            mask = np.broadcast_to(mask[:1], mask.shape)
        if "mask inverted" in bugs:
            mask = ~mask
        allowed &= ~mask[:, None, None, :]
    return allowed


def _scale(head_dim, scale, bugs):
    if scale is None:
        return 1.0 / head_dim if "default scale 1/D" in bugs else 1.0 / math.sqrt(head_dim)
    return scale


def _expand(x, group):
    return np.repeat(x, group, axis=1) if group > 1 else x


def _blocks(seq_k, block_k, order):
    starts = list(range(0, seq_k, block_k))
    return starts[::-1] if order == "reverse" else starts


def _scores(q, kb, scale, dtype, bugs, scale_first):
    if scale_first:
        s = (q * dtype.type(scale)) @ np.swapaxes(kb, -1, -2)
    else:
        s = (q @ np.swapaxes(kb, -1, -2)) * dtype.type(scale)
    if "scale applied twice" in bugs:
        s = s * dtype.type(scale)
    return s


def blocked_forward(q, k, v, causal=False, key_padding_mask=None, scale=None, *, block_k=16, bugs=(),
                    order="forward", scale_first=False):
    dtype = q.dtype
    batch, heads, seq_q, head_dim = q.shape
    seq_k = k.shape[2]
    group = heads // k.shape[1]
    scale = _scale(head_dim, scale, bugs)
    if "scales q in place" in bugs:
        q *= dtype.type(1.0)          # writes into the caller's array (same values, still a mutation)
        q[..., :1] += dtype.type(0.5)
    allowed = _visible(batch, seq_q, seq_k, causal, key_padding_mask, bugs)
    k_full, v_full = _expand(k, group), _expand(v, group)
    if "last partial block unmasked" in bugs:   # pad to a whole block and forget to mask the padding
        pad = -seq_k % block_k
        k_full = np.concatenate([k_full, np.zeros(k_full.shape[:2] + (pad, head_dim), dtype)], axis=2)
        v_full = np.concatenate([v_full, np.zeros(v_full.shape[:2] + (pad, head_dim), dtype)], axis=2)
        allowed = np.concatenate([allowed, np.ones(allowed.shape[:3] + (pad,), bool)], axis=3)
    total_k = k_full.shape[2]
    row_max = np.full((batch, heads, seq_q), -np.inf, dtype)
    row_sum = np.zeros((batch, heads, seq_q), dtype)
    acc = np.zeros((batch, heads, seq_q, head_dim), dtype)
    for start in _blocks(total_k, block_k, order):
        stop = min(start + block_k, total_k)
        s = _scores(q, k_full[:, :, start:stop], scale, dtype, bugs, scale_first)
        visible = allowed[..., start:stop]
        if "finite mask sentinel" in bugs:
            s = np.where(visible, s, dtype.type(-1e4))
        else:
            s = np.where(visible, s, -np.inf)
        if "no max subtraction" in bugs:
            new_max = np.zeros_like(row_max)
        else:
            new_max = np.maximum(row_max, s.max(axis=-1))
        safe = np.where(np.isfinite(new_max), new_max, 0).astype(dtype)
        with np.errstate(over="ignore", invalid="ignore"):
            p = np.exp(s - safe[..., None])
            alpha = np.exp(np.where(np.isfinite(row_max), row_max - safe, -np.inf)).astype(dtype)
        if "rescale forgotten" in bugs:
            alpha = np.ones_like(alpha)
        with np.errstate(over="ignore", invalid="ignore"):
            row_sum = alpha * row_sum + p.sum(axis=-1)
            acc = alpha[..., None] * acc + p @ v_full[:, :, start:stop]
        row_max = new_max
    has_key = row_sum > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        if "nan for empty rows" in bugs:
            out = acc / row_sum[..., None]
        else:
            out = np.where(has_key[..., None], acc / np.where(has_key, row_sum, 1)[..., None], 0).astype(dtype)
        lse = np.where(has_key, row_max + np.log(np.where(has_key, row_sum, 1)), -np.inf).astype(dtype)
    if "lse in base 2" in bugs:
        lse = (lse / dtype.type(math.log(2))).astype(dtype)
    if "lse is the row max" in bugs:
        lse = np.where(has_key, row_max, -np.inf).astype(dtype)
    return out.astype(dtype), lse


def blocked_backward(dout, q, k, v, out, lse, causal=False, key_padding_mask=None, scale=None, *, block_k=16,
                     bugs=(), order="forward", scale_first=False):
    dtype = q.dtype
    batch, heads, seq_q, head_dim = q.shape
    seq_k = k.shape[2]
    group = heads // k.shape[1]
    scale = _scale(head_dim, scale, bugs)
    allowed = _visible(batch, seq_q, seq_k, causal and "backward ignores causal" not in bugs, key_padding_mask, bugs)
    k_full, v_full = _expand(k, group), _expand(v, group)
    if "delta = rowsum(dout)" in bugs:
        delta = dout.sum(axis=-1, keepdims=True)
    else:
        delta = (dout * out).sum(axis=-1, keepdims=True)                       # (B, H, Nq, 1)
    safe_lse = np.where(np.isfinite(lse), lse, 0).astype(dtype)[..., None]
    dq = np.zeros_like(q)
    dk_full, dv_full = np.zeros_like(k_full), np.zeros_like(v_full)
    for start in _blocks(seq_k, block_k, order):
        stop = min(start + block_k, seq_k)
        kb, vb = k_full[:, :, start:stop], v_full[:, :, start:stop]
        s = _scores(q, kb, scale, dtype, bugs, scale_first)
        with np.errstate(under="ignore"):
            p = np.where(allowed[..., start:stop], np.exp(np.where(allowed[..., start:stop], s - safe_lse, 0)), 0).astype(dtype)
        if "dv from unnormalised p" in bugs:
            p_for_dv = np.where(allowed[..., start:stop], np.exp(np.where(allowed[..., start:stop], s, 0)), 0).astype(dtype)
        else:
            p_for_dv = p
        dv_full[:, :, start:stop] = np.swapaxes(p_for_dv, -1, -2) @ dout
        dp = dout @ np.swapaxes(vb, -1, -2)
        ds = p * (delta - dp) if "dS sign flipped" in bugs else p * (dp - delta)
        dq += (ds @ kb) * dtype.type(scale)
        dk_scale = dtype.type(1.0) if "dk without scale" in bugs else dtype.type(scale)
        dk_full[:, :, start:stop] = (np.swapaxes(ds, -1, -2) @ q) * dk_scale
    if group > 1:
        b, h, n, d = dk_full.shape
        if "GQA gradients overwritten" in bugs:
            dk, dv = dk_full[:, group - 1::group], dv_full[:, group - 1::group]
        else:
            dk = dk_full.reshape(b, h // group, group, n, d).sum(axis=2)
            dv = dv_full.reshape(b, h // group, group, n, d).sum(axis=2)
    else:
        dk, dv = dk_full, dv_full
    return dq, dk.astype(dtype), dv.astype(dtype)


# --- the library: (name, bug, the property expected to catch it) ---------------------------------
BUGS = {
    "broken_strict_causal": ("strict causal", "`>` instead of `>=` in the causal mask: the diagonal hidden"),
    "broken_causal_corner": ("top-left corner", "causal aligned to the top-left corner instead of bottom-right"),
    "broken_rescale_forgotten": ("rescale forgotten", "online softmax: running sum and accumulator not rescaled"),
    "broken_finite_sentinel": ("finite mask sentinel", "masked scores set to -1e4 instead of -inf"),
    "broken_last_block_unmasked": ("last partial block unmasked", "zero padding of the last key block not masked"),
    "broken_scale_twice": ("scale applied twice", "scores multiplied by the scale twice"),
    "broken_delta_rowsum_dout": ("delta = rowsum(dout)", "backward: delta = rowsum(dout) instead of rowsum(dout * out)"),
    "broken_ds_sign": ("dS sign flipped", "backward: dS = P * (delta - dP)"),
    "broken_backward_ignores_causal": ("backward ignores causal", "backward recomputes P without the causal mask"),
    "broken_gqa_overwrite": ("GQA gradients overwritten", "GQA: dk, dv of a shared head overwritten, not summed"),
    "broken_nan_empty_rows": ("nan for empty rows", "a row with no visible key divides 0 by 0: NaN"),
    "broken_lse_base2": ("lse in base 2", "lse returned in base 2"),
    "broken_no_max_subtraction": ("no max subtraction", "softmax without subtracting the row max: overflow at large logits"),
    "broken_batch_mask": ("mask of batch row 0 for all", "the padding mask of batch row 0 used for every row"),
    "broken_default_scale": ("default scale 1/D", "default scale 1/D instead of 1/sqrt(D)"),
    "broken_dk_unscaled": ("dk without scale", "backward: dk missing the scale factor"),
    "broken_mask_inverted": ("mask inverted", "key_padding_mask read as True = keep"),
    "broken_lse_row_max": ("lse is the row max", "lse returned as the row max, log(sum) forgotten"),
    "broken_mutates_q": ("scales q in place", "the forward writes into its input q"),
    "broken_dv_unnormalised": ("dv from unnormalised p", "backward: dv from exp(S) instead of exp(S - lse)"),
}


def _make(name, bug):
    def forward(q, k, v, *, causal=False, scale=None, key_padding_mask=None):
        with np.errstate(all="ignore"):           # some bugs overflow; that is what the verifier must see
            return blocked_forward(q, k, v, causal, key_padding_mask, scale, bugs=(bug,))

    def backward(dout, q, k, v, out, lse, *, causal=False, scale=None, key_padding_mask=None):
        with np.errstate(all="ignore"):
            return blocked_backward(dout, q, k, v, out, lse, causal, key_padding_mask, scale, bugs=(bug,))

    forward.__name__ = forward.__qualname__ = name
    backward.__name__ = backward.__qualname__ = name + "_backward"
    return forward, backward


for _name, (_bug, _) in BUGS.items():
    globals()[_name], globals()[_name + "_backward"] = _make(_name, _bug)


# --- correct, but rounding differently from the reference ---------------------------------------
REORDERED = {
    "correct_blocks_16": dict(block_k=16),
    "correct_blocks_5_reverse": dict(block_k=5, order="reverse"),
    "correct_blocks_3_scale_first": dict(block_k=3, scale_first=True),
    "correct_blocks_64_reverse_scale_first": dict(block_k=64, order="reverse", scale_first=True),
}


def _make_correct(name, options):
    def forward(q, k, v, *, causal=False, scale=None, key_padding_mask=None):
        return blocked_forward(q, k, v, causal, key_padding_mask, scale, **options)

    def backward(dout, q, k, v, out, lse, *, causal=False, scale=None, key_padding_mask=None):
        return blocked_backward(dout, q, k, v, out, lse, causal, key_padding_mask, scale, **options)

    forward.__name__ = forward.__qualname__ = name
    backward.__name__ = backward.__qualname__ = name + "_backward"
    return forward, backward


for _name, _options in REORDERED.items():
    globals()[_name], globals()[_name + "_backward"] = _make_correct(_name, _options)


def torch_sdpa(q, k, v, *, causal=False, scale=None, key_padding_mask=None):
    """PyTorch's scaled_dot_product_attention (causal aligned top-left), key_padding_mask as attn_mask."""
    import torch
    import torch.nn.functional as F
    attn_mask = None
    if key_padding_mask is not None:
        attn_mask = ~key_padding_mask[:, None, None, :]                        # True = take part
        if causal:
            attn_mask = attn_mask & torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool).tril()
    return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=causal and attn_mask is None,
                                          scale=scale, enable_gqa=q.shape[1] != k.shape[1])
