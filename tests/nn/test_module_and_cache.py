"""Module API, KV cache = full forward, module paths in traces, hooks, bad input."""
import numpy as np
import pytest

import minilm
from minilm import nn
from minilm.models import GPT, GPTConfig


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(3, 4)
        self.blocks = nn.ModuleList([nn.LayerNorm(4), nn.LayerNorm(4)])
        self.fc2 = nn.Linear(4, 2, bias=False)

    def forward(self, x):
        h = self.fc1(x).relu()
        for block in self.blocks:
            h = block(h)
        return self.fc2(h)


def test_parameters_state_dict_and_strict_loading():
    m = Tiny()
    names = [n for n, _ in m.named_parameters()]
    assert names == ["fc1.weight", "fc1.bias", "blocks.0.weight", "blocks.0.bias", "blocks.1.weight",
                     "blocks.1.bias", "fc2.weight"]
    assert m.num_parameters() == 12 + 4 + 16 + 8
    state = m.state_dict()
    other = Tiny()
    other.load_state_dict(state)
    for n, p in other.named_parameters():
        np.testing.assert_array_equal(p.data, state[n])
    bad = dict(state)
    bad["fc1.weight"] = np.zeros((5, 3), np.float32)
    del bad["fc2.weight"]
    bad["extra"] = np.zeros(1, np.float32)
    with pytest.raises(minilm.ShapeError, match=r"missing: \['fc2.weight'\].*unexpected: \['extra'\].*fc1.weight: "
                                                 r"expected \(4, 3\) float32, got \(5, 3\) float32"):
        other.load_state_dict(bad)
    wrong_dtype = dict(state, **{"fc1.bias": state["fc1.bias"].astype(np.float64)})
    with pytest.raises(minilm.ShapeError, match="fc1.bias: expected"):
        other.load_state_dict(wrong_dtype)


def test_modes_dtype_freeze_repr():
    m = Tiny()
    m.eval()
    assert not m.training and not m.blocks[1].training
    m.train()
    assert m.fc1.training
    m.to(np.float64)
    assert all(p.dtype == np.float64 for p in m.parameters())
    m.fc1.requires_grad_(False)
    assert m.num_parameters(trainable_only=True) == 16 + 8
    text = repr(m)
    assert "(fc1): Linear(in_features=3, out_features=4, bias=True" in text and "Parameter(4, 3) float64, frozen" in text
    with pytest.raises(minilm.DTypeError, match="float32 or float64"):
        m.to(np.int32)


def test_module_paths_reach_the_trace_and_hooks_see_and_change_gradients():
    m = Tiny()
    x = minilm.tensor(np.ones((2, 3), np.float32))
    seen = []
    m.blocks[1].register_forward_hook(lambda mod, inputs, out: seen.append(out.shape))
    handle = m.fc2.register_backward_hook(lambda mod, g: g * 0)      # zero every gradient flowing back
    with minilm.trace() as tr:
        m(x).sum().backward()
    modules = {r.module for r in tr.rows if r.phase == "forward"}
    assert {"fc1", "blocks.0", "blocks.1", "fc2"} <= modules
    assert seen == [(2, 4)]
    assert np.all(m.fc2.weight.grad == 0) and np.all(m.fc1.weight.grad == 0)
    handle.remove()
    m.zero_grad()
    m(x).sum().backward()
    assert np.any(m.fc2.weight.grad != 0)


def test_kv_cache_gives_the_full_forward_logits():
    model = GPT(GPTConfig(vocab_size=17, context=12, d_model=16, n_heads=2, n_layers=2))
    model.to(np.float64)
    ids = np.random.default_rng(0).integers(0, 17, size=(1, 12))
    full = model(ids).data[0]
    cache = nn.KVCache(2)
    pieces = [model(ids[:, :4], kv_cache=cache).data[0]]
    for t in range(4, 12):
        pieces.append(model(ids[:, t:t + 1], kv_cache=cache).data[0])
    np.testing.assert_allclose(np.concatenate(pieces), full, rtol=1e-12, atol=1e-12)


def test_bad_inputs_are_clear_errors():
    mha = nn.MultiHeadAttention(8, 2)
    x = minilm.tensor(np.ones((2, 3, 8), np.float32))
    with pytest.raises(minilm.ShapeError, match=r"key_padding_mask must be \(B, S\) = \(2, 3\); got \(2, 4\)"):
        mha(x, key_padding_mask=np.zeros((2, 4), bool))
    with pytest.raises(minilm.ShapeError, match="must be boolean"):
        mha(x, key_padding_mask=np.zeros((2, 3), np.int64))
    with pytest.raises(minilm.ShapeError, match=r"x must be \(B, T, 8\)"):
        mha(minilm.tensor(np.ones((2, 3, 7), np.float32)))
    with pytest.raises(minilm.ShapeError, match="divisible"):
        nn.MultiHeadAttention(10, 3)
    with pytest.raises(minilm.ShapeError, match=r"rank r must be in \[1, min\(in, out\)\] = \[1, 3\]"):
        nn.LoRALinear(nn.Linear(3, 5), r=4)
    with pytest.raises(minilm.ShapeError, match=r"ids must lie in \[0, 5\)"):
        nn.Embedding(5, 2)(np.array([5]))
    with pytest.raises(minilm.ShapeError, match=r"h0 must be \(num_layers, B, H\)"):
        nn.LSTM(2, 3)(minilm.tensor(np.ones((1, 2, 2), np.float32)), (np.zeros((1, 2, 3)), np.zeros((1, 2, 3))))
