"""KV cache == full forward at the layer level, LoRA merge/unmerge, positional encodings, dropout,
containers, module paths after surgery, module-level gradcheck, and bad input."""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minilm
import minilm.functional as F
from minilm import nn


def f64(x, requires_grad=False):
    return minilm.tensor(np.asarray(x, dtype=np.float64), requires_grad=requires_grad)


# ----- KV cache ------------------------------------------------------------------------------------
@given(kv_heads=st.integers(1, 2), group=st.integers(1, 2), head_dim=st.sampled_from([2, 3]),
       prompt=st.integers(1, 4), steps=st.integers(1, 4), chunk=st.integers(1, 2), seed=st.integers(0, 2**31 - 1))
def test_kv_cache_matches_full_causal_forward(kv_heads, group, head_dim, prompt, steps, chunk, seed):
    """A prompt, then new tokens `chunk` at a time (Nq < Nk: bottom-right causal) == one full forward."""
    rng = np.random.default_rng(seed)
    heads = kv_heads * group
    dim = heads * head_dim
    mha = nn.MultiHeadAttention(dim, heads, causal=True, num_kv_heads=kv_heads)
    mha.to(np.float64)
    total = prompt + steps * chunk
    x = rng.standard_normal((2, total, dim))
    full = mha(f64(x)).data
    cache = nn.LayerCache()
    pieces = [mha(f64(x[:, :prompt]), kv_cache=cache).data]
    for start in range(prompt, total, chunk):
        pieces.append(mha(f64(x[:, start:start + chunk]), kv_cache=cache).data)
    assert cache.length == total
    np.testing.assert_allclose(np.concatenate(pieces, axis=1), full, rtol=1e-12, atol=1e-12)


def test_kv_cache_through_blocks_with_padding_mask():
    rng = np.random.default_rng(1)
    blocks = nn.ModuleList([nn.TransformerBlock(8, 2, 16, causal=True) for _ in range(2)])
    blocks.to(np.float64)
    x = rng.standard_normal((2, 6, 8))
    padding = np.zeros((2, 6), bool)
    padding[1, :2] = True                                    # left padding in the second sequence

    def run(h, mask, cache=None):
        h = f64(h)
        for index, block in enumerate(blocks):
            h = block(h, key_padding_mask=mask, kv_cache=None if cache is None else cache.layer(index))
        return h.data

    full = run(x, padding)
    cache = nn.KVCache(2)
    pieces = [run(x[:, :3], padding[:, :3], cache)]
    for t in range(3, 6):
        pieces.append(run(x[:, t:t + 1], padding[:, :t + 1], cache))
    assert cache.length == 6
    np.testing.assert_allclose(np.concatenate(pieces, axis=1), full, rtol=1e-12, atol=1e-12)


# ----- LoRA -----------------------------------------------------------------------------------------
def test_lora_starts_at_base_merges_and_unmerges_exactly():
    rng = np.random.default_rng(0)
    base = nn.Linear(6, 5)
    base.to(np.float64)
    original = base.weight.data.copy()
    layer = nn.LoRALinear(base, r=2, alpha=4.0)
    x = f64(rng.standard_normal((3, 6)))
    np.testing.assert_array_equal(layer(x).data, base(x).data)              # B = 0: starts equal to the base
    bound = math.sqrt(6.0 / (6 * 6))                                         # kaiming_uniform(a=sqrt(5)), fan_in 6
    assert np.abs(layer.lora_A.data).max() <= bound and np.all(layer.lora_B.data == 0)
    layer.lora_B.data[...] = rng.standard_normal((5, 2))
    unmerged = layer(x).data
    np.testing.assert_allclose(unmerged, base(x).data + 2.0 * x.data @ layer.lora_A.data.T @ layer.lora_B.data.T,
                               rtol=1e-12)
    layer.merge()
    np.testing.assert_allclose(base.weight.data, original + 2.0 * layer.lora_B.data @ layer.lora_A.data, rtol=1e-12)
    np.testing.assert_allclose(layer(x).data, unmerged, rtol=1e-12, atol=1e-12)
    layer.unmerge()
    np.testing.assert_allclose(base.weight.data, original, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(layer(x).data, unmerged, rtol=1e-12, atol=1e-12)


def test_lora_trains_only_the_adapter_and_dropout_is_on_the_lora_path():
    rng = np.random.default_rng(2)
    layer = nn.LoRALinear(nn.Linear(4, 3), r=2, alpha=2.0, dropout=0.5)
    layer.to(np.float64)
    layer.lora_B.data[...] = rng.standard_normal((3, 2))
    assert layer.num_parameters(trainable_only=True) == 2 * 4 + 3 * 2
    x = f64(rng.standard_normal((5, 4)), requires_grad=True)
    layer(x).sum().backward()
    assert layer.base.weight.grad is None and layer.lora_A.grad is not None and x.grad is not None
    layer.eval()                                               # no dropout: deterministic
    np.testing.assert_array_equal(layer(x).data, layer(x).data)
    layer.train()
    base_out = layer.base(x).data
    # the base path never sees dropout: with B's path removed the output is exactly the base's
    saved = layer.lora_B.data.copy()
    layer.lora_B.data[...] = 0
    np.testing.assert_array_equal(layer(x).data, base_out)
    layer.lora_B.data[...] = saved
    # an unfrozen base gets its gradient too
    layer.base.requires_grad_(True)
    layer.zero_grad()
    layer(x).sum().backward()
    np.testing.assert_allclose(layer.base.weight.grad, np.ones((3, 5)) @ x.data)


def test_lora_gradcheck_and_bad_rank():
    layer = nn.LoRALinear(nn.Linear(4, 3), r=3, alpha=6.0)
    layer.to(np.float64)
    layer.lora_B.data[...] = np.random.default_rng(0).standard_normal((3, 3))
    x = f64(np.random.default_rng(1).standard_normal((2, 4)), requires_grad=True)
    assert minilm.gradcheck(lambda x, a, b: layer(x), [x, layer.lora_A, layer.lora_B]).passed
    with pytest.raises(minilm.ShapeError, match=r"rank r must be in \[1, min\(in, out\)\] = \[1, 3\].*got r=4"):
        nn.LoRALinear(nn.Linear(4, 3), r=4)
    with pytest.raises(minilm.ShapeError, match="got r=0"):
        nn.LoRALinear(nn.Linear(4, 3), r=0)


# ----- positional encodings, dropout, containers ----------------------------------------------------
def test_positional_encodings():
    table = nn.sinusoidal_table(7, 5)
    pos, i = 3, 1
    assert table[pos, 2 * i] == pytest.approx(math.sin(pos / 10000 ** (2 * i / 5)), rel=1e-6)
    assert table[pos, 2 * i + 1] == pytest.approx(math.cos(pos / 10000 ** (2 * i / 5)), rel=1e-6)
    fixed = nn.SinusoidalPositionalEncoding(7, 5)
    assert fixed.num_parameters() == 0 and fixed(np.arange(4)).shape == (4, 5)
    with pytest.raises(minilm.ShapeError, match="max_len 7"):
        fixed(np.arange(8))
    learned = nn.LearnedPositionalEncoding(7, 5)
    assert learned.num_parameters() == 35
    learned(np.array([0, 0, 2])).sum().backward()
    np.testing.assert_array_equal(learned.weight.grad[:, 0], [2, 0, 1, 0, 0, 0, 0])


def test_dropout_is_seeded_scaled_and_off_in_eval():
    x = f64(np.ones((200, 50)), requires_grad=True)
    a = F.dropout(x, 0.25, True, 5).data
    np.testing.assert_array_equal(a, F.dropout(x, 0.25, True, np.random.default_rng(5)).data)
    assert set(np.unique(a)) == {0.0, 1 / 0.75}
    assert abs((a == 0).mean() - 0.25) < 0.02
    layer = nn.Dropout(0.5, seed=3)
    layer.eval()
    assert layer(x) is x
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\)"):
        F.dropout(x, 1.0, True, 0)


def test_sequential_moduledict_and_paths_after_surgery():
    model = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4))
    heads = nn.ModuleDict({"a": nn.Linear(4, 2), "b": nn.Linear(4, 1)})
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias", "1.weight", "1.bias"]
    assert list(heads) == ["a", "b"] and "a" in heads and len(heads) == 2
    x = minilm.tensor(np.ones((2, 3), np.float32))
    model(x)
    model[0] = nn.LoRALinear(model[0], r=2)                  # LoRA injected after the first call
    with minilm.trace() as tr:
        model(x)
    assert {r.module for r in tr.rows if r.phase == "forward"} == {"0", "1"}


# ----- gradcheck of whole modules (float64) ----------------------------------------------------------
def test_modules_pass_gradcheck():
    rng = np.random.default_rng(4)
    block = nn.TransformerBlock(6, 3, 8, causal=True)
    block.to(np.float64)
    x = f64(rng.standard_normal((1, 3, 6)), requires_grad=True)
    params = [block.attn.q_proj.weight, block.ln2.weight, block.ff.fc1.bias]
    assert minilm.gradcheck(lambda x, *p: block(x), [x, *params], max_elements=60).passed

    lstm = nn.LSTM(2, 3, num_layers=2)
    lstm.to(np.float64)
    xs = f64(rng.standard_normal((2, 3, 2)), requires_grad=True)
    assert minilm.gradcheck(lambda x, w: lstm(x)[0], [xs, lstm.weight_hh_l1]).passed


# ----- bad input --------------------------------------------------------------------------------------
def test_bad_input_names_argument_expected_and_actual():
    ones = lambda *s: minilm.tensor(np.ones(s))                                # noqa: E731
    with pytest.raises(minilm.ShapeError, match=r"linear: x must be \(\.\.\., 4\).*got x\(2, 3\)"):
        nn.Linear(4, 2)(ones(2, 3))
    with pytest.raises(minilm.ShapeError, match=r"layer_norm: x must be \(\.\.\., 5\)"):
        nn.LayerNorm(5)(ones(2, 4))
    with pytest.raises(minilm.ShapeError, match=r"attention: key_padding_mask must be \(B, Nk\) = \(1, 3\); got \(1, 4\)"):
        F.attention(ones(1, 2, 3, 4), ones(1, 2, 3, 4), ones(1, 2, 3, 4), key_padding_mask=np.zeros((1, 4), bool))
    with pytest.raises(minilm.DTypeError, match="key_padding_mask must be boolean"):
        F.attention(ones(1, 2, 3, 4), ones(1, 2, 3, 4), ones(1, 2, 3, 4), key_padding_mask=np.zeros((1, 3)))
    with pytest.raises(minilm.ShapeError, match=r"k must be \(B, Hkv, Nk, D\) = \(1, Hkv, Nk, 4\).*got \(1, 2, 3, 5\)"):
        F.attention(ones(1, 2, 3, 4), ones(1, 2, 3, 5), ones(1, 2, 3, 5))
    with pytest.raises(minilm.ShapeError, match=r"q must be \(B, H, Nq, D\); got \(2, 3, 4\)"):
        F.attention(ones(2, 3, 4), ones(1, 2, 3, 4), ones(1, 2, 3, 4))
    nan_q = np.ones((1, 2, 3, 4))
    nan_q[0, 1, 2, 3] = np.nan
    with pytest.raises(minilm.NonFiniteError, match="q contains 1 NaN"):
        F.attention(f64(nan_q), ones(1, 2, 3, 4), ones(1, 2, 3, 4))
    with pytest.raises(minilm.ShapeError, match=r"targets must be \(N,\) = \(3,\); got \(4,\)"):
        F.cross_entropy(ones(3, 5), np.zeros(4, int))
    with pytest.raises(minilm.ShapeError, match=r"targets must lie in \[0, 5\).*got \[7\]"):
        F.cross_entropy(ones(3, 5), np.array([0, 7, -100]))
    with pytest.raises(minilm.DTypeError, match="ids must be integers"):
        nn.Embedding(4, 2)(np.array([0.5]))
    with pytest.raises(minilm.ShapeError, match=r"ids must lie in \[0, 4\); got min -1"):
        nn.Embedding(4, 2)(np.array([-1, 2]))
    with pytest.raises(minilm.ShapeError, match=r"LSTM: input must be \(B, T, 3\); got \(2, 4, 2\)"):
        nn.LSTM(3, 2)(ones(2, 4, 2))
    with pytest.raises(minilm.ShapeError, match=r"c0 must be \(num_layers, B, H\) = \(2, 1, 2\); got \(1, 1, 2\)"):
        nn.LSTM(3, 2, num_layers=2)(ones(1, 4, 3), (np.zeros((2, 1, 2)), np.zeros((1, 1, 2))))
    with pytest.raises(minilm.ShapeError, match=r"num_kv_heads 3 must divide num_heads 4"):
        nn.MultiHeadAttention(8, 4, num_kv_heads=3)
    lora = nn.LoRALinear(nn.Linear(3, 3), r=1)
    lora.lora_B.data[0, 0] = np.nan
    with pytest.raises(minilm.NonFiniteError, match="NaN"):
        lora.merge()
