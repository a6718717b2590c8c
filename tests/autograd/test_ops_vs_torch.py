"""Every primitive op against PyTorch autograd (CPU, float64): forward values and input gradients."""
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import minilm
from tests.autograd.op_table import OPS
from tests.autograd.test_ops_gradcheck import draw_inputs, matmul_shapes
from tests.autograd.strategies import values

ELEMENTWISE = [op for op in OPS if op.name != "matmul"]


def compare_with_torch(ours_fn, theirs_fn, arrays, seed=0):
    ours = [minilm.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    out = ours_fn(*ours)
    ref = theirs_fn(*theirs)
    np.testing.assert_allclose(out.data, ref.detach().numpy(), rtol=1e-12, atol=1e-12)
    upstream = np.random.default_rng(seed).standard_normal(out.shape)
    out.backward(upstream)
    ref.backward(torch.tensor(upstream))
    for x, t in zip(ours, theirs):
        assert (x.grad is None) == (t.grad is None), "minilm and torch disagree on which inputs get a gradient"
        if t.grad is None:
            continue
        expected = t.grad.numpy()
        np.testing.assert_allclose(x.grad, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("spec", ELEMENTWISE, ids=lambda s: s.name)
@given(data=st.data())
def test_op_matches_torch(spec, data):
    compare_with_torch(spec.ours, spec.theirs, draw_inputs(data, spec))


@given(shapes_ab=matmul_shapes(), data=st.data())
def test_matmul_matches_torch(shapes_ab, data):
    compare_with_torch(lambda a, b: a @ b, lambda a, b: a @ b, [data.draw(values(s)) for s in shapes_ab])


def test_max_ties_share_gradient_like_torch_amax():
    a = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    compare_with_torch(lambda x: x.max(axis=1), lambda x: x.amax(dim=1), [a])


def test_maximum_ties_split_like_torch():
    a, b = np.array([1.0, 2.0, 3.0]), np.array([1.0, 5.0, 0.0])
    compare_with_torch(minilm.maximum, torch.maximum, [a, b])
