"""Layers against PyTorch (CPU, float64) with identical weights: outputs and every gradient."""
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import minilm
import minilm.functional as F
from minilm import nn


def ours(x):
    return minilm.tensor(np.asarray(x, dtype=np.float64), requires_grad=True)


def theirs(x):
    return torch.tensor(np.asarray(x, dtype=np.float64), requires_grad=True)


def copy_weights(module, torch_module, mapping=None):
    module.to(np.float64)
    for name, p in module.named_parameters():
        target = torch_module
        for part in (mapping or {}).get(name, name).split("."):
            target = getattr(target, part)
        target.data[...] = torch.tensor(p.data)


def close(a, b, tol=1e-10):
    np.testing.assert_allclose(a, b.detach().numpy() if hasattr(b, "detach") else b, rtol=tol, atol=tol)


def test_linear_embedding_layernorm_match_torch():
    rng = np.random.default_rng(0)
    lin, tlin = nn.Linear(5, 3), torch.nn.Linear(5, 3).double()
    copy_weights(lin, tlin)
    x = rng.standard_normal((2, 4, 5))
    a, b = ours(x), theirs(x)
    out, ref = lin(a), tlin(b)
    close(out.data, ref)
    g = rng.standard_normal(out.shape)
    out.backward(g)
    ref.backward(torch.tensor(g))
    close(a.grad, b.grad)
    close(lin.weight.grad, tlin.weight.grad)
    close(lin.bias.grad, tlin.bias.grad)

    emb, temb = nn.Embedding(6, 4, padding_idx=1), torch.nn.Embedding(6, 4, padding_idx=1).double()
    copy_weights(emb, temb)
    ids = np.array([[0, 1, 1, 5], [5, 5, 2, 0]])
    out, ref = emb(ids), temb(torch.tensor(ids))
    close(out.data, ref)
    g = rng.standard_normal(out.shape)
    out.backward(g)
    ref.backward(torch.tensor(g))
    close(emb.weight.grad, temb.weight.grad)

    ln, tln = nn.LayerNorm(5, eps=1e-6), torch.nn.LayerNorm(5, eps=1e-6).double()
    ln.to(np.float64)
    ln.weight.data[:] = rng.standard_normal(5)
    ln.bias.data[:] = rng.standard_normal(5)
    copy_weights(ln, tln)
    a, b = ours(x * 3 + 1), theirs(x * 3 + 1)
    out, ref = ln(a), tln(b)
    close(out.data, ref)
    out.backward(g2 := rng.standard_normal(out.shape))
    ref.backward(torch.tensor(g2))
    close(a.grad, b.grad)
    close(ln.weight.grad, tln.weight.grad)
    close(ln.bias.grad, tln.bias.grad)


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy_matches_torch(smoothing):
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((7, 5)) * 4
    targets = rng.integers(0, 5, 7)
    targets[[1, 4]] = -100
    a, b = ours(logits), theirs(logits)
    loss = F.cross_entropy(a, targets, ignore_index=-100, label_smoothing=smoothing)
    ref = torch.nn.functional.cross_entropy(b, torch.tensor(targets), ignore_index=-100, label_smoothing=smoothing)
    close(loss.item(), ref.item())
    loss.backward()
    ref.backward()
    close(a.grad, b.grad)


def bottom_right_mask(nq, nk, causal, padding):
    allowed = np.ones((padding.shape[0] if padding is not None else 1, 1, nq, nk), bool)
    if causal:
        allowed &= np.arange(nk)[None, :] <= np.arange(nq)[:, None] + nk - nq
    if padding is not None:
        allowed &= ~padding[:, None, None, :]
    return allowed


@given(nq=st.integers(1, 6), nk=st.integers(1, 6), d=st.sampled_from([3, 5, 8]), causal=st.booleans(),
       masked=st.booleans(), seed=st.integers(0, 10**6))
def test_attention_matches_torch_sdpa(nq, nk, d, causal, masked, seed):
    rng = np.random.default_rng(seed)
    q, k, v = rng.standard_normal((2, 3, nq, d)), rng.standard_normal((2, 3, nk, d)), rng.standard_normal((2, 3, nk, d))
    padding = (rng.random((2, nk)) < 0.3) if masked else None
    allowed = bottom_right_mask(nq, nk, causal, padding)
    rows_with_keys = allowed.any(-1)                        # torch gives NaN for rows with no key: compare the rest
    if not rows_with_keys.all():
        allowed = allowed | ~rows_with_keys[..., None]      # let torch see something there; we compare only valid rows
    tq, tk, tv = theirs(q), theirs(k), theirs(v)
    ref = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, attn_mask=torch.tensor(allowed))
    a, b, c = ours(q), ours(k), ours(v)
    out = F.attention(a, b, c, causal=causal, key_padding_mask=padding)
    keep = np.broadcast_to(rows_with_keys[..., None], out.shape)
    np.testing.assert_allclose(out.data[keep], ref.detach().numpy()[keep], rtol=1e-10, atol=1e-12)
    assert np.all(out.data[~keep] == 0)
    g = rng.standard_normal(out.shape) * keep               # no gradient into the empty rows
    out.backward(g)
    ref.backward(torch.tensor(g))
    close(a.grad, tq.grad)
    close(b.grad, tk.grad)
    close(c.grad, tv.grad)


@pytest.mark.parametrize("cross,masked", [(False, False), (False, True), (True, True)])
def test_multi_head_attention_matches_torch(cross, masked):
    rng = np.random.default_rng(2)
    dim, heads = 12, 3
    mha = nn.MultiHeadAttention(dim, heads)
    tmha = torch.nn.MultiheadAttention(dim, heads, batch_first=True).double()
    mha.to(np.float64)
    w = np.concatenate([mha.q_proj.weight.data, mha.k_proj.weight.data, mha.v_proj.weight.data])
    bias = np.concatenate([mha.q_proj.bias.data, mha.k_proj.bias.data, mha.v_proj.bias.data])
    tmha.in_proj_weight.data[...] = torch.tensor(w)
    tmha.in_proj_bias.data[...] = torch.tensor(bias)
    tmha.out_proj.weight.data[...] = torch.tensor(mha.out_proj.weight.data)
    tmha.out_proj.bias.data[...] = torch.tensor(mha.out_proj.bias.data)
    x = rng.standard_normal((2, 5, dim))
    ctx = rng.standard_normal((2, 7, dim)) if cross else x
    padding = np.zeros((2, ctx.shape[1]), bool)
    if masked:
        padding[0, -2:] = True
    a, c = ours(x), ours(ctx)
    out = mha(a, context=c if cross else None, key_padding_mask=padding if masked else None)
    ta, tc = theirs(x), theirs(ctx)
    ref, _ = tmha(ta, tc if cross else ta, tc if cross else ta,
                  key_padding_mask=torch.tensor(padding) if masked else None, need_weights=False)
    close(out.data, ref)
    g = rng.standard_normal(out.shape)
    out.backward(g)
    ref.backward(torch.tensor(g))
    close(a.grad, ta.grad)
    if cross:
        close(c.grad, tc.grad)
    dw = np.concatenate([mha.q_proj.weight.grad, mha.k_proj.weight.grad, mha.v_proj.weight.grad])
    close(dw, tmha.in_proj_weight.grad)
    close(mha.out_proj.weight.grad, tmha.out_proj.weight.grad)


@pytest.mark.parametrize("layers", [1, 2])
def test_lstm_matches_torch_with_initial_state(layers):
    rng = np.random.default_rng(3)
    lstm, tlstm = nn.LSTM(4, 6, num_layers=layers), torch.nn.LSTM(4, 6, num_layers=layers, batch_first=True).double()
    copy_weights(lstm, tlstm)
    x, h0, c0 = rng.standard_normal((3, 5, 4)), rng.standard_normal((layers, 3, 6)), rng.standard_normal((layers, 3, 6))
    a, h, c = ours(x), ours(h0), ours(c0)
    ta, th, tc = theirs(x), theirs(h0), theirs(c0)
    out, (h_n, c_n) = lstm(a, (h, c))
    ref, (th_n, tc_n) = tlstm(ta, (th, tc))
    for mine, ref_value in ((out, ref), (h_n, th_n), (c_n, tc_n)):
        close(mine.data, ref_value)
    g = [rng.standard_normal(o.shape) for o in (out, h_n, c_n)]
    ((out * g[0]).sum() + (h_n * g[1]).sum() + (c_n * g[2]).sum()).backward()
    ((ref * torch.tensor(g[0])).sum() + (th_n * torch.tensor(g[1])).sum() + (tc_n * torch.tensor(g[2])).sum()).backward()
    for mine, ref_t in ((a, ta), (h, th), (c, tc)):
        close(mine.grad, ref_t.grad)
    for name, p in lstm.named_parameters():
        close(p.grad, getattr(tlstm, name).grad)
