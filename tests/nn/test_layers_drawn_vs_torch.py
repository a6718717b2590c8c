"""Layers against PyTorch (CPU, float64) on hypothesis-drawn shapes, identical weights: outputs and
every parameter and input gradient. Shapes include batch 1, sequence length 1, Nq != Nk, head dims
that are not powers of two, grouped-query heads and fully padded rows."""
import numpy as np
import torch
from hypothesis import given
from hypothesis import strategies as st

import minilm
import minilm.functional as F
from minilm import nn

TOL = 1e-9


def ours(x):
    return minilm.tensor(np.asarray(x, dtype=np.float64), requires_grad=True)


def theirs(x):
    return torch.tensor(np.asarray(x, dtype=np.float64), requires_grad=True)


def close(mine, ref, tol=TOL):
    ref = ref.detach().numpy() if isinstance(ref, torch.Tensor) else ref
    np.testing.assert_allclose(mine, ref, rtol=tol, atol=tol)


def backward_both(out, ref, rng):
    g = rng.standard_normal(out.shape)
    out.backward(g)
    ref.backward(torch.tensor(g))


def copy_into_torch(module, torch_module):
    """Our parameters (float64) into the torch module of the same names."""
    module.to(np.float64)
    for name, p in module.named_parameters():
        target = torch_module
        for part in name.split("."):
            target = getattr(target, part)
        with torch.no_grad():
            target.copy_(torch.tensor(p.data))


def randomize(module, rng):
    for p in module.parameters():
        p.data[...] = rng.standard_normal(p.shape) * 0.5


seeds = st.integers(0, 2**31 - 1)


@given(lead=st.lists(st.integers(1, 3), min_size=0, max_size=2), n_in=st.integers(1, 6), n_out=st.integers(1, 6),
       bias=st.booleans(), seed=seeds)
def test_linear(lead, n_in, n_out, bias, seed):
    rng = np.random.default_rng(seed)
    lin, ref_lin = nn.Linear(n_in, n_out, bias=bias), torch.nn.Linear(n_in, n_out, bias=bias).double()
    copy_into_torch(lin, ref_lin)
    x = rng.standard_normal((*lead, n_in))
    a, b = ours(x), theirs(x)
    out, ref = lin(a), ref_lin(b)
    close(out.data, ref)
    backward_both(out, ref, rng)
    close(a.grad, b.grad)
    close(lin.weight.grad, ref_lin.weight.grad)
    if bias:
        close(lin.bias.grad, ref_lin.bias.grad)


@given(vocab=st.integers(1, 7), dim=st.integers(1, 5), shape=st.lists(st.integers(1, 4), min_size=1, max_size=2),
       use_padding=st.booleans(), seed=seeds)
def test_embedding(vocab, dim, shape, use_padding, seed):
    rng = np.random.default_rng(seed)
    padding_idx = int(rng.integers(vocab)) if use_padding else None
    emb = nn.Embedding(vocab, dim, padding_idx=padding_idx)
    ref_emb = torch.nn.Embedding(vocab, dim, padding_idx=padding_idx).double()
    copy_into_torch(emb, ref_emb)
    ids = rng.integers(0, vocab, size=shape)
    out, ref = emb(ids), ref_emb(torch.tensor(ids))
    close(out.data, ref)
    backward_both(out, ref, rng)
    close(emb.weight.grad, ref_emb.weight.grad)


@given(lead=st.lists(st.integers(1, 3), min_size=1, max_size=2), dim=st.integers(1, 9),
       eps=st.sampled_from([1e-5, 1e-6]), scale=st.sampled_from([1e-3, 1.0, 1e3]), seed=seeds)
def test_layer_norm(lead, dim, eps, scale, seed):
    rng = np.random.default_rng(seed)
    ln, ref_ln = nn.LayerNorm(dim, eps=eps), torch.nn.LayerNorm(dim, eps=eps).double()
    ln.to(np.float64)
    randomize(ln, rng)
    copy_into_torch(ln, ref_ln)
    x = rng.standard_normal((*lead, dim)) * scale + 3.0
    a, b = ours(x), theirs(x)
    out, ref = ln(a), ref_ln(b)
    close(out.data, ref, tol=1e-8)
    backward_both(out, ref, rng)
    close(a.grad, b.grad, tol=1e-7)
    close(ln.weight.grad, ref_ln.weight.grad, tol=1e-8)
    close(ln.bias.grad, ref_ln.bias.grad)


@given(n=st.integers(1, 6), classes=st.integers(1, 6), smoothing=st.sampled_from([0.0, 0.1, 0.3]),
       magnitude=st.sampled_from([1.0, 1e4]), ignore_index=st.sampled_from([-100, 0]), seed=seeds)
def test_cross_entropy(n, classes, smoothing, magnitude, ignore_index, seed):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((n, classes)) * magnitude
    targets = rng.integers(0, classes, n)
    targets[rng.random(n) < 0.3] = -100 if ignore_index == -100 else 0
    if not (targets != ignore_index).any():
        targets[0] = classes - 1 if ignore_index == 0 and classes > 1 else targets[0]
    a, b = ours(logits), theirs(logits)
    loss = F.cross_entropy(a, targets, ignore_index=ignore_index, label_smoothing=smoothing)
    ref = torch.nn.functional.cross_entropy(b, torch.tensor(targets), ignore_index=ignore_index,
                                            label_smoothing=smoothing)
    if not (targets != ignore_index).any():           # nothing to average over: both give NaN
        assert np.isnan(loss.item()) and np.isnan(ref.item())
        return
    close(loss.item(), ref.item(), tol=1e-9 * magnitude)
    loss.backward()
    ref.backward()
    assert np.isfinite(a.grad).all()
    close(a.grad, b.grad)


def bottom_right_allowed(nq, nk, causal, padding, batch):
    allowed = np.ones((batch, 1, nq, nk), bool)
    if causal:
        allowed &= np.arange(nk)[None, :] <= np.arange(nq)[:, None] + nk - nq
    if padding is not None:
        allowed &= ~padding[:, None, None, :]
    return allowed


@given(batch=st.integers(1, 2), kv_heads=st.integers(1, 2), group=st.integers(1, 3), nq=st.integers(1, 5),
       nk=st.integers(1, 5), head_dim=st.sampled_from([1, 3, 6, 7]), causal=st.booleans(),
       masked=st.booleans(), scale=st.sampled_from([None, 0.3]), seed=seeds)
def test_attention_vs_torch_sdpa(batch, kv_heads, group, nq, nk, head_dim, causal, masked, scale, seed):
    """torch's is_causal is top-left; the bottom-right mask is built explicitly. torch gives NaN in rows
    with no visible key, ours 0: those rows are compared with 0 and get no upstream gradient."""
    rng = np.random.default_rng(seed)
    heads = kv_heads * group
    q = rng.standard_normal((batch, heads, nq, head_dim))
    k, v = rng.standard_normal((2, batch, kv_heads, nk, head_dim))
    padding = None
    if masked:
        padding = rng.random((batch, nk)) < 0.4
        padding[0] = True                                            # one batch row with every key padded
    allowed = bottom_right_allowed(nq, nk, causal, padding, batch)
    has_keys = allowed.any(-1)                                       # (B, 1, Nq)
    a, b, c = ours(q), ours(k), ours(v)
    out = F.attention(a, b, c, causal=causal, key_padding_mask=padding, scale=scale)
    tq, tk, tv = theirs(q), theirs(k), theirs(v)
    ref = torch.nn.functional.scaled_dot_product_attention(
        tq, tk.repeat_interleave(group, dim=1), tv.repeat_interleave(group, dim=1),
        attn_mask=torch.tensor(allowed | ~has_keys[..., None]), scale=scale)
    keep = np.broadcast_to(has_keys[..., None], out.shape)
    close(out.data[keep], ref.detach().numpy()[keep])
    assert np.all(out.data[~keep] == 0)
    g = rng.standard_normal(out.shape) * keep
    out.backward(g)
    ref.backward(torch.tensor(g))
    close(a.grad, tq.grad)
    close(b.grad, tk.grad)
    close(c.grad, tv.grad)


def torch_mha(x, context, mha, padding, causal):
    """The same multi-head attention composed from torch ops (GQA: repeat k/v heads), our weights."""
    def proj(lin, t):
        w = torch.tensor(lin.weight.data, requires_grad=True)
        b = torch.tensor(lin.bias.data, requires_grad=True)
        return t @ w.T + b, (w, b)
    batch, nq, dim = x.shape
    nk = context.shape[1]
    heads, kv_heads, head_dim = mha.num_heads, mha.num_kv_heads, mha.head_dim
    q, pq = proj(mha.q_proj, x)
    k, pk = proj(mha.k_proj, context)
    v, pv = proj(mha.v_proj, context)
    q = q.reshape(batch, nq, heads, head_dim).transpose(1, 2)
    k = k.reshape(batch, nk, kv_heads, head_dim).transpose(1, 2).repeat_interleave(heads // kv_heads, dim=1)
    v = v.reshape(batch, nk, kv_heads, head_dim).transpose(1, 2).repeat_interleave(heads // kv_heads, dim=1)
    allowed = bottom_right_allowed(nq, nk, causal, padding, batch)
    has_keys = allowed.any(-1, keepdims=True)
    o = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=torch.tensor(allowed | ~has_keys))
    o = o * torch.tensor(has_keys)                                   # rows with no key give 0, as ours
    out, po = proj(mha.out_proj, o.transpose(1, 2).reshape(batch, nq, dim))
    return out, {"q_proj": pq, "k_proj": pk, "v_proj": pv, "out_proj": po}


@given(batch=st.integers(1, 2), kv_heads=st.integers(1, 2), group=st.integers(1, 2), head_dim=st.sampled_from([1, 3, 5]),
       nq=st.integers(1, 4), nk=st.integers(1, 4), cross=st.booleans(), causal=st.booleans(), masked=st.booleans(),
       seed=seeds)
def test_multi_head_attention_vs_torch(batch, kv_heads, group, head_dim, nq, nk, cross, causal, masked, seed):
    rng = np.random.default_rng(seed)
    heads = kv_heads * group
    dim = heads * head_dim
    mha = nn.MultiHeadAttention(dim, heads, causal=causal, num_kv_heads=kv_heads)
    mha.to(np.float64)
    randomize(mha, rng)
    nk = nk if cross else nq
    x = rng.standard_normal((batch, nq, dim))
    context = rng.standard_normal((batch, nk, dim))
    padding = (rng.random((batch, nk)) < 0.4) if masked else None
    if masked:
        padding[-1] = True                                            # fully masked rows
    a, c = ours(x), ours(context)
    out = mha(a, context=c if cross else None, key_padding_mask=padding)
    ta, tc = theirs(x), theirs(context)
    ref, params = torch_mha(ta, tc if cross else ta, mha, padding, causal)
    close(out.data, ref)
    backward_both(out, ref, rng)
    close(a.grad, ta.grad)
    if cross:
        close(c.grad, tc.grad)
    for name, (w, b) in params.items():
        close(getattr(mha, name).weight.grad, w.grad)
        close(getattr(mha, name).bias.grad, b.grad)


@given(layers=st.integers(1, 2), batch=st.integers(1, 3), steps=st.integers(1, 5), n_in=st.integers(1, 4),
       hidden=st.integers(1, 5), batch_first=st.booleans(), initial=st.booleans(), seed=seeds)
def test_lstm_vs_torch(layers, batch, steps, n_in, hidden, batch_first, initial, seed):
    rng = np.random.default_rng(seed)
    lstm = nn.LSTM(n_in, hidden, num_layers=layers, batch_first=batch_first)
    ref_lstm = torch.nn.LSTM(n_in, hidden, num_layers=layers, batch_first=batch_first).double()
    copy_into_torch(lstm, ref_lstm)
    x = rng.standard_normal((batch, steps, n_in) if batch_first else (steps, batch, n_in))
    a, ta = ours(x), theirs(x)
    if initial:
        h0, c0 = rng.standard_normal((2, layers, batch, hidden))
        h, c, th, tc = ours(h0), ours(c0), theirs(h0), theirs(c0)
        out, (h_n, c_n) = lstm(a, (h, c))
        ref, (th_n, tc_n) = ref_lstm(ta, (th, tc))
    else:
        out, (h_n, c_n) = lstm(a)
        ref, (th_n, tc_n) = ref_lstm(ta)
    for mine, r in ((out, ref), (h_n, th_n), (c_n, tc_n)):
        close(mine.data, r)
    g = [rng.standard_normal(o.shape) for o in (out, h_n, c_n)]
    ((out * g[0]).sum() + (h_n * g[1]).sum() + (c_n * g[2]).sum()).backward()
    ((ref * torch.tensor(g[0])).sum() + (th_n * torch.tensor(g[1])).sum() + (tc_n * torch.tensor(g[2])).sum()).backward()
    close(a.grad, ta.grad)
    if initial:
        close(h.grad, th.grad)
        close(c.grad, tc.grad)
    for name, p in lstm.named_parameters():
        close(p.grad, getattr(ref_lstm, name).grad)


@given(lead=st.lists(st.integers(1, 3), min_size=1, max_size=2), dim=st.integers(1, 5), hidden=st.integers(1, 7),
       activation=st.sampled_from(["gelu", "relu", "gelu_tanh"]), seed=seeds)
def test_feedforward_vs_torch(lead, dim, hidden, activation, seed):
    rng = np.random.default_rng(seed)
    ff = nn.FeedForward(dim, hidden, activation=activation)
    ff.to(np.float64)
    x = rng.standard_normal((*lead, dim))
    a, ta = ours(x), theirs(x)
    out = ff(a)
    w1, b1, w2, b2 = (torch.tensor(p.data, requires_grad=True) for p in
                      (ff.fc1.weight, ff.fc1.bias, ff.fc2.weight, ff.fc2.bias))
    h = ta @ w1.T + b1
    act = {"gelu": lambda t: torch.nn.functional.gelu(t),
           "gelu_tanh": lambda t: torch.nn.functional.gelu(t, approximate="tanh"),
           "relu": torch.relu}[activation]
    ref = act(h) @ w2.T + b2
    close(out.data, ref)
    backward_both(out, ref, rng)
    close(a.grad, ta.grad)
    for p, tp in zip((ff.fc1.weight, ff.fc1.bias, ff.fc2.weight, ff.fc2.bias), (w1, b1, w2, b2)):
        close(p.grad, tp.grad)


@given(post_norm=st.booleans(), causal=st.booleans(), batch=st.integers(1, 2), steps=st.integers(1, 4),
       masked=st.booleans(), seed=seeds)
def test_transformer_block_vs_torch_encoder_layer(post_norm, causal, batch, steps, masked, seed):
    """torch.nn.TransformerEncoderLayer (norm_first = pre-LN) with our weights."""
    rng = np.random.default_rng(seed)
    dim, heads, hidden = 6, 2, 10
    block = nn.TransformerBlock(dim, heads, hidden, dropout=0.0, causal=causal, post_norm=post_norm)
    block.to(np.float64)
    randomize(block, rng)
    ref_block = torch.nn.TransformerEncoderLayer(dim, heads, hidden, dropout=0.0, activation="gelu",
                                                 batch_first=True, norm_first=not post_norm).double()
    attn = block.attn
    with torch.no_grad():
        ref_block.self_attn.in_proj_weight.copy_(torch.tensor(np.concatenate(
            [attn.q_proj.weight.data, attn.k_proj.weight.data, attn.v_proj.weight.data])))
        ref_block.self_attn.in_proj_bias.copy_(torch.tensor(np.concatenate(
            [attn.q_proj.bias.data, attn.k_proj.bias.data, attn.v_proj.bias.data])))
        for mine, theirs_p in ((attn.out_proj.weight, ref_block.self_attn.out_proj.weight),
                               (attn.out_proj.bias, ref_block.self_attn.out_proj.bias),
                               (block.ff.fc1.weight, ref_block.linear1.weight), (block.ff.fc1.bias, ref_block.linear1.bias),
                               (block.ff.fc2.weight, ref_block.linear2.weight), (block.ff.fc2.bias, ref_block.linear2.bias),
                               (block.ln1.weight, ref_block.norm1.weight), (block.ln1.bias, ref_block.norm1.bias),
                               (block.ln2.weight, ref_block.norm2.weight), (block.ln2.bias, ref_block.norm2.bias)):
            theirs_p.copy_(torch.tensor(mine.data))
    x = rng.standard_normal((batch, steps, dim))
    padding = None
    if masked:
        padding = rng.random((batch, steps)) < 0.3
        padding[:, 0] = False                    # torch's fused path gives NaN for fully masked rows; keep one key
    a, ta = ours(x), theirs(x)
    out = block(a, key_padding_mask=padding)
    mask = torch.nn.Transformer.generate_square_subsequent_mask(steps, dtype=torch.float64) if causal else None
    ref = ref_block(ta, src_mask=mask, src_key_padding_mask=None if padding is None else torch.tensor(padding),
                    is_causal=causal)
    close(out.data, ref, tol=1e-8)
    backward_both(out, ref, rng)
    close(a.grad, ta.grad, tol=1e-8)
    close(block.ln1.weight.grad, ref_block.norm1.weight.grad, tol=1e-8)
    close(block.ff.fc1.weight.grad, ref_block.linear1.weight.grad, tol=1e-8)
    close(attn.out_proj.weight.grad, ref_block.self_attn.out_proj.weight.grad, tol=1e-8)
    dw_in = np.concatenate([attn.q_proj.weight.grad, attn.k_proj.weight.grad, attn.v_proj.weight.grad])
    close(dw_in, ref_block.self_attn.in_proj_weight.grad, tol=1e-8)


@given(lead=st.lists(st.integers(1, 3), min_size=1, max_size=2), n_in=st.integers(2, 6), n_out=st.integers(2, 6),
       r=st.integers(1, 2), alpha=st.sampled_from([1.0, 8.0]), seed=seeds)
def test_lora_linear_vs_torch(lead, n_in, n_out, r, alpha, seed):
    """LoRA composed in torch (frozen W, b): y = x W^T + b + (alpha/r) x A^T B^T; grads of x, A, B only."""
    rng = np.random.default_rng(seed)
    layer = nn.LoRALinear(nn.Linear(n_in, n_out), r=r, alpha=alpha)
    layer.to(np.float64)
    layer.lora_B.data[...] = rng.standard_normal(layer.lora_B.shape)   # B starts at zero: make the path visible
    x = rng.standard_normal((*lead, n_in))
    a, ta = ours(x), theirs(x)
    out = layer(a)
    w, bias = torch.tensor(layer.base.weight.data), torch.tensor(layer.base.bias.data)
    la, lb = (torch.tensor(p.data, requires_grad=True) for p in (layer.lora_A, layer.lora_B))
    ref = ta @ w.T + bias + (alpha / r) * (ta @ la.T @ lb.T)
    close(out.data, ref)
    backward_both(out, ref, rng)
    close(a.grad, ta.grad)
    close(layer.lora_A.grad, la.grad)
    close(layer.lora_B.grad, lb.grad)
    assert layer.base.weight.grad is None and layer.base.bias.grad is None     # frozen: nothing computed
