"""The engine's contract: summed gradients on reuse, accumulation, no_grad, deep graphs, hooks."""
import numpy as np
import pytest

import minilm
from minilm import GradError


def t(values, grad=True):
    return minilm.tensor(np.asarray(values, dtype=np.float64), requires_grad=grad)


def test_tensor_basics_and_dtypes():
    x = minilm.tensor([1.0, 2.0])
    assert x.dtype == np.float32 and x.shape == (2,) and x.ndim == 1 and not x.requires_grad
    assert minilm.tensor(np.zeros(3)).dtype == np.float64          # float64 kept when given
    assert minilm.tensor([1, 2]).dtype.kind == "i"
    assert minilm.tensor(np.ones(2, np.float16)).dtype == np.float32
    assert (x * 2).dtype == np.float32 and (x + np.arange(2)).dtype == np.float32   # ints do not promote
    assert minilm.tensor(3.0).item() == 3.0
    d = t([1.0]).detach()
    assert not d.requires_grad and d.grad_fn is None
    assert isinstance(x.numpy(), np.ndarray)


def test_a_tensor_used_twice_in_one_op_gets_both_contributions():
    x = t([3.0])
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad, [6.0])


def test_a_node_feeding_several_ops_gets_the_summed_gradient():
    x = t([1.0, 2.0])
    h = x * 2                       # h feeds three ops
    y = (h * h).sum() + h.sum() + (h.exp()).sum()
    y.backward()
    expected = 2 * (2 * h.data + 1 + np.exp(h.data))
    np.testing.assert_allclose(x.grad, expected)


def test_gradients_accumulate_until_zeroed():
    x = t([1.0, 2.0])
    (x * 3).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad, [6.0, 6.0])
    x.zero_grad()
    assert x.grad is None
    y = (x * x).sum()
    y.backward()
    y.backward()                    # the graph is kept: a second backward adds again
    np.testing.assert_allclose(x.grad, 4 * x.data)


def test_backward_on_non_scalar_needs_grad():
    x = t([1.0, 2.0])
    y = x * 2
    with pytest.raises(GradError, match=r"not a scalar; pass grad="):
        y.backward()
    y.backward(np.array([1.0, 10.0]))
    np.testing.assert_allclose(x.grad, [2.0, 20.0])
    with pytest.raises(minilm.ShapeError, match="grad must have the tensor's shape"):
        y.backward(np.ones(3))


def test_backward_without_requires_grad_is_a_clear_error():
    with pytest.raises(GradError, match="does not require grad"):
        (t([1.0], grad=False) * 2).sum().backward()


def test_int_tensors_cannot_require_grad():
    with pytest.raises(minilm.DTypeError, match="floating-point"):
        minilm.tensor([1, 2], requires_grad=True)


def test_no_grad_records_nothing():
    x = t([1.0])
    with minilm.no_grad():
        y = x * 2
    assert not y.requires_grad and y.grad_fn is None
    assert minilm.is_grad_enabled()
    z = x * 2
    assert z.requires_grad and z.grad_fn is not None


def test_deep_graph_does_not_hit_the_recursion_limit():
    x = t([0.5])
    y = x
    for _ in range(10_000):
        y = y * 1.0001 + 0.0
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [1.0001 ** 10_000], rtol=1e-9)


def test_leaf_backward_and_hooks_on_leaves_and_intermediates():
    x = t([1.0, 2.0])
    seen = []
    x.register_hook(lambda g: seen.append(("x", g.copy())))
    h = x * 3
    handle = h.register_hook(lambda g: g * 10)          # a hook may change the gradient
    (h * 1.0).sum().backward()
    np.testing.assert_allclose(x.grad, [30.0, 30.0])
    assert seen and seen[0][0] == "x"
    handle.remove()
    x.zero_grad()
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad, [3.0, 3.0])


def test_retain_grad_keeps_intermediate_gradients():
    x = t([1.0, 2.0])
    h = x * x
    h.retain_grad()
    h.sum().backward()
    np.testing.assert_allclose(h.grad, [1.0, 1.0])


def test_multi_output_function_with_an_unused_output():
    class SplitTwo(minilm.Function):
        formula = "da = concat(g1, g2)"

        @staticmethod
        def forward(ctx, a):
            return a[:1].copy(), a[1:].copy()

        @staticmethod
        def backward(ctx, g1, g2):
            return np.concatenate([g1, g2])

    x = t([1.0, 2.0, 3.0])
    first, rest = SplitTwo.apply(x)
    (first * 5).sum().backward()                        # `rest` gets a zero gradient
    np.testing.assert_allclose(x.grad, [5.0, 0.0, 0.0])


def test_float32_and_float64_mixed_promote_like_numpy():
    a = minilm.tensor(np.ones(2, np.float32), requires_grad=True)
    b = minilm.tensor(np.ones(2, np.float64), requires_grad=True)
    (a * b).sum().backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64


def test_getitem_scatter_adds_repeated_indices():
    x = t([1.0, 2.0, 3.0])
    x[np.array([0, 0, 2])].sum().backward()
    np.testing.assert_allclose(x.grad, [2.0, 0.0, 1.0])
    x.zero_grad()
    x[minilm.tensor(np.array([1, 1]))].sum().backward()     # a Tensor of indices works too
    np.testing.assert_allclose(x.grad, [0.0, 2.0, 0.0])
