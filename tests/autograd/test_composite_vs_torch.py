"""Random composite expressions with broadcasting: minilm's gradients equal PyTorch's to 1e-10."""
import numpy as np
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes

import minilm

UNARY = {
    "tanh": (lambda x: x.tanh(), lambda x: x.tanh()),
    "sigmoid": (lambda x: x.sigmoid(), lambda x: x.sigmoid()),
    "square": (lambda x: x * x, lambda x: x * x),
    "gelu": (lambda x: x.gelu(), lambda x: torch.nn.functional.gelu(x)),
    "soft_exp": (lambda x: (x * 0.3).exp(), lambda x: (x * 0.3).exp()),
    "sum_keep": (lambda x: x.sum(axis=-1, keepdims=True), lambda x: x.sum(dim=-1, keepdim=True)),
    "mean_keep0": (lambda x: x.mean(axis=0, keepdims=True), lambda x: x.mean(dim=0, keepdim=True)),
}
BINARY = {
    "add": (lambda a, b: a + b, lambda a, b: a + b),
    "sub": (lambda a, b: a - b, lambda a, b: a - b),
    "mul": (lambda a, b: a * b, lambda a, b: a * b),
    "div": (lambda a, b: a / (b * b + 1.0), lambda a, b: a / (b * b + 1.0)),
    "maximum": (minilm.maximum, torch.maximum),
}


@st.composite
def programs(draw):
    shapes = draw(mutually_broadcastable_shapes(num_shapes=3, min_dims=1, max_dims=3, min_side=1, max_side=4))
    steps = []
    for _ in range(draw(st.integers(3, 12))):
        if draw(st.booleans()):
            steps.append(("u", draw(st.sampled_from(sorted(UNARY))), draw(st.integers(0, 99))))
        else:
            steps.append(("b", draw(st.sampled_from(sorted(BINARY))), draw(st.integers(0, 99)), draw(st.integers(0, 99))))
    return shapes.input_shapes, steps, draw(st.integers(0, 2**31 - 1))


def run(program, leaves, lib):
    _, steps, _ = program
    column = 1 if lib == "torch" else 0
    values = list(leaves)
    for step in steps:
        if step[0] == "u":
            fn = UNARY[step[1]][column]
            values.append(fn(values[step[2] % len(values)]))
        else:
            fn = BINARY[step[1]][column]
            values.append(fn(values[step[2] % len(values)], values[step[3] % len(values)]))
    total = values[-1].sum()
    for v in values[len(leaves):-1]:          # every intermediate feeds the loss too: heavy reuse
        total = total + v.sum() * 0.1
    return total


@given(program=programs())
def test_random_expression_gradients_match_torch(program):
    shapes, _, seed = program
    rng = np.random.default_rng(seed)
    arrays = [rng.uniform(-1.5, 1.5, size=s) for s in shapes]
    ours = [minilm.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    loss = run(program, ours, "minilm")
    ref = run(program, theirs, "torch")
    np.testing.assert_allclose(loss.item(), ref.item(), rtol=1e-12)
    loss.backward()
    ref.backward()
    for x, t in zip(ours, theirs):
        assert (x.grad is None) == (t.grad is None), "minilm and torch disagree on which inputs get a gradient"
        if t.grad is None:
            continue
        expected = t.grad.numpy()
        np.testing.assert_allclose(x.grad, expected, rtol=1e-10, atol=1e-10)
