"""Every fused op two ways in float64: its hand-written backward vs finite differences (gradcheck),
and the fused op vs the same computation composed of primitive autograd ops (forward and gradients)."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minilm
import minilm.functional as F


def t(x):
    return minilm.tensor(np.asarray(x, dtype=np.float64), requires_grad=True)


def assert_same_grads(fused, composed, arrays, seed=0):
    """fused(*tensors) and composed(*tensors) give the same value and the same input gradients."""
    a = [t(x) for x in arrays]
    b = [t(x) for x in arrays]
    out_a, out_b = fused(*a), composed(*b)
    np.testing.assert_allclose(out_a.data, out_b.data, rtol=1e-10, atol=1e-12)
    g = np.random.default_rng(seed).standard_normal(out_a.shape)
    out_a.backward(g)
    out_b.backward(g)
    for x, y in zip(a, b):
        np.testing.assert_allclose(x.grad, y.grad, rtol=1e-9, atol=1e-11)


dims = st.integers(1, 5)


# ----- linear ---------------------------------------------------------------------------------
@given(batch=st.lists(dims, min_size=0, max_size=2), n_in=dims, n_out=dims, seed=st.integers(0, 10**6))
def test_linear(batch, n_in, n_out, seed):
    rng = np.random.default_rng(seed)
    x, w, b = rng.standard_normal((*batch, n_in)), rng.standard_normal((n_out, n_in)), rng.standard_normal(n_out)
    assert minilm.gradcheck(F.linear, [t(x), t(w), t(b)]).passed
    assert_same_grads(F.linear, lambda x, w, b: x @ w.T + b, [x, w, b])


# ----- embedding --------------------------------------------------------------------------------
@given(vocab=st.integers(1, 6), dim=dims, n=st.integers(1, 8), seed=st.integers(0, 10**6))
def test_embedding_scatter_adds_repeated_ids(vocab, dim, n, seed):
    rng = np.random.default_rng(seed)
    w, ids = rng.standard_normal((vocab, dim)), rng.integers(0, vocab, size=(2, n))
    assert minilm.gradcheck(lambda w: F.embedding(ids, w), [t(w)]).passed
    assert_same_grads(lambda w: F.embedding(ids, w), lambda w: w[ids], [w])


def test_embedding_padding_idx_gets_no_gradient_and_bad_ids_are_errors():
    w = t(np.ones((4, 3)))
    F.embedding(np.array([0, 2, 2, 3]), w, padding_idx=2).sum().backward()
    np.testing.assert_array_equal(w.grad[:, 0], [1, 0, 0, 1])
    with pytest.raises(minilm.ShapeError, match=r"ids must lie in \[0, 4\); got min 0, max 4"):
        F.embedding(np.array([0, 4]), w)
    with pytest.raises(minilm.DTypeError, match="ids must be integers"):
        F.embedding(np.array([0.0]), w)


# ----- layer norm -------------------------------------------------------------------------------
@given(batch=st.lists(dims, min_size=1, max_size=2), c=st.integers(2, 7), seed=st.integers(0, 10**6))
def test_layer_norm(batch, c, seed):
    rng = np.random.default_rng(seed)
    x, w, b = rng.standard_normal((*batch, c)), rng.standard_normal(c), rng.standard_normal(c)
    assert minilm.gradcheck(lambda x, w, b: F.layer_norm(x, w, b), [t(x), t(w), t(b)]).passed

    def composed(x, w, b):
        mean = x.mean(axis=-1, keepdims=True)
        var = x.var(axis=-1, keepdims=True)
        return (x - mean) / (var + 1e-5).sqrt() * w + b
    assert_same_grads(lambda x, w, b: F.layer_norm(x, w, b), composed, [x, w, b])


# ----- softmax, log_softmax, cross_entropy ---------------------------------------------------------
@given(shape=st.lists(dims, min_size=1, max_size=3), seed=st.integers(0, 10**6), axis=st.sampled_from([0, -1]))
def test_softmax_and_log_softmax(shape, seed, axis):
    x = np.random.default_rng(seed).standard_normal(shape) * 3
    for fn in (F.softmax, F.log_softmax):
        assert minilm.gradcheck(lambda x: fn(x, axis=axis), [t(x)]).passed

    def composed_softmax(x):
        e = (x - x.data.max(axis=axis, keepdims=True)).exp()
        return e / e.sum(axis=axis, keepdims=True)

    def composed_log_softmax(x):
        shifted = x - x.data.max(axis=axis, keepdims=True)
        return shifted - shifted.exp().sum(axis=axis, keepdims=True).log()
    assert_same_grads(lambda x: F.softmax(x, axis), composed_softmax, [x])
    assert_same_grads(lambda x: F.log_softmax(x, axis), composed_log_softmax, [x])


@given(n=st.integers(1, 6), c=st.integers(2, 6), smoothing=st.sampled_from([0.0, 0.1, 0.5]),
       seed=st.integers(0, 10**6))
def test_cross_entropy(n, c, smoothing, seed):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((n, c)) * 2
    targets = rng.integers(0, c, n)
    if n > 1:
        targets[0] = -100                                                    # an ignored row
    fused = lambda x: F.cross_entropy(x, targets, label_smoothing=smoothing)  # noqa: E731
    assert minilm.gradcheck(fused, [t(logits)]).passed

    def composed(x):
        logp = F.log_softmax(x, axis=-1)
        valid = targets != -100
        onehot = np.zeros((n, c))
        onehot[np.arange(n)[valid], targets[valid]] = 1.0
        q = (1 - smoothing) * onehot + smoothing / c * valid[:, None]
        return -(logp * q).sum() / valid.sum()
    assert_same_grads(fused, composed, [logits])


def test_cross_entropy_is_stable_for_logits_of_magnitude_1e4():
    logits = t(np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 5e3]]))
    loss = F.cross_entropy(logits, np.array([1, 1]))
    loss.backward()
    assert np.isfinite(loss.item()) and np.isfinite(logits.grad).all()
    assert loss.item() == pytest.approx(1e4, rel=1e-12)


# ----- dropout -----------------------------------------------------------------------------------
def test_dropout_backward_and_modes():
    x = np.random.default_rng(0).standard_normal((4, 5))
    fixed = lambda x: F.dropout(x, 0.4, True, np.random.default_rng(7))      # noqa: E731  same mask each call
    assert minilm.gradcheck(fixed, [t(x)]).passed
    out = fixed(t(x)).data
    assert set(np.round(out / x, 6).ravel()) <= {0.0, round(1 / 0.6, 6)}
    assert F.dropout(t(x), 0.4, False, np.random.default_rng(7)).data is not None
    np.testing.assert_array_equal(F.dropout(t(x), 0.4, False, np.random.default_rng(7)).data, x)


# ----- attention -----------------------------------------------------------------------------------
@given(b=st.integers(1, 2), hkv=st.integers(1, 2), group=st.integers(1, 2), nq=st.integers(1, 5),
       nk=st.integers(1, 5), d=st.sampled_from([1, 3, 5]), causal=st.booleans(), masked=st.booleans(),
       seed=st.integers(0, 10**6))
def test_attention(b, hkv, group, nq, nk, d, causal, masked, seed):
    rng = np.random.default_rng(seed)
    h = hkv * group
    q, k, v = rng.standard_normal((b, h, nq, d)), rng.standard_normal((b, hkv, nk, d)), rng.standard_normal((b, hkv, nk, d))
    mask = rng.random((b, nk)) < 0.4 if masked else None
    if masked:
        mask[-1, :] = True                                                   # a batch row with every key padded
    fused = lambda q, k, v: F.attention(q, k, v, causal=causal, key_padding_mask=mask)  # noqa: E731
    assert minilm.gradcheck(fused, [t(q), t(k), t(v)]).passed

    def composed(q, k, v):
        kf = minilm.concatenate([k[:, i:i + 1] for i in range(hkv) for _ in range(group)], axis=1)
        vf = minilm.concatenate([v[:, i:i + 1] for i in range(hkv) for _ in range(group)], axis=1)
        scores = (q @ kf.swapaxes(-1, -2)) * (1 / np.sqrt(d))
        allowed = np.ones((b, 1, nq, nk), bool)
        if causal:
            allowed &= (np.arange(nk)[None, :] <= np.arange(nq)[:, None] + nk - nq)
        if mask is not None:
            allowed &= ~mask[:, None, None, :]
        scores = scores.masked_fill(~allowed, -1e30)
        probs = F.softmax(scores, axis=-1) * allowed.any(axis=-1, keepdims=True)   # empty rows give 0
        return probs @ vf
    assert_same_grads(fused, composed, [q, k, v])


# ----- lstm ------------------------------------------------------------------------------------------
@given(b=st.integers(1, 2), steps=st.integers(1, 4), n_in=st.integers(1, 3), hidden=st.integers(1, 3),
       seed=st.integers(0, 10**6))
def test_lstm(b, steps, n_in, hidden, seed):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal((b, steps, n_in)), rng.standard_normal((b, hidden)), rng.standard_normal((b, hidden)),
              rng.standard_normal((4 * hidden, n_in)), rng.standard_normal((4 * hidden, hidden)),
              rng.standard_normal(4 * hidden), rng.standard_normal(4 * hidden)]
    weights_out = [rng.standard_normal((b, steps, hidden)), rng.standard_normal((b, hidden)), rng.standard_normal((b, hidden))]

    def scalar(fn):
        def run(*xs):
            out, h_n, c_n = fn(*xs)
            return (out * weights_out[0]).sum() + (h_n * weights_out[1]).sum() + (c_n * weights_out[2]).sum()
        return run

    assert minilm.gradcheck(scalar(F.lstm), [t(a) for a in arrays]).passed

    def composed(x, h, c, w_ih, w_hh, b_ih, b_hh):
        outs = []
        H = hidden
        for step in range(steps):
            z = x[:, step] @ w_ih.T + b_ih + h @ w_hh.T + b_hh
            i, f, g, o = z[:, :H].sigmoid(), z[:, H:2 * H].sigmoid(), z[:, 2 * H:3 * H].tanh(), z[:, 3 * H:].sigmoid()
            c = f * c + i * g
            h = o * c.tanh()
            outs.append(h)
        return minilm.stack(outs, axis=1), h, c
    assert_same_grads(scalar(F.lstm), scalar(composed), arrays)


# ----- lora ------------------------------------------------------------------------------------------
@given(n_in=st.integers(2, 5), n_out=st.integers(2, 5), r=st.integers(1, 2), seed=st.integers(0, 10**6))
def test_lora_linear(n_in, n_out, r, seed):
    rng = np.random.default_rng(seed)
    x, w, bias = rng.standard_normal((3, n_in)), rng.standard_normal((n_out, n_in)), rng.standard_normal(n_out)
    a, bb = rng.standard_normal((r, n_in)), rng.standard_normal((n_out, r))
    fused = lambda x, w, bias, a, bb: F.lora_linear(x, w, bias, a, bb, 2.0)  # noqa: E731
    assert minilm.gradcheck(fused, [t(x), t(w), t(bias), t(a), t(bb)]).passed
    assert_same_grads(fused, lambda x, w, bias, a, bb: x @ w.T + bias + (x @ a.T @ bb.T) * 2.0, [x, w, bias, a, bb])
    with_dropout = lambda x, a, bb: F.lora_linear(x, w, bias, a, bb, 2.0, 0.3, np.random.default_rng(3))  # noqa: E731
    assert minilm.gradcheck(with_dropout, [t(x), t(a), t(bb)]).passed
