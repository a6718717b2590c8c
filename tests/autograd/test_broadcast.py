"""unbroadcast on its own: the gradient of a broadcast input is the sum over the broadcast axes."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes

from minilm.autograd.broadcast import broadcast_axes, unbroadcast


def test_examples():
    g = np.arange(24.0).reshape(2, 3, 4)
    np.testing.assert_array_equal(unbroadcast(g, (4,)), g.sum(axis=(0, 1)))
    np.testing.assert_array_equal(unbroadcast(g, (3, 1)), g.sum(axis=(0, 2)).reshape(3, 1))
    np.testing.assert_array_equal(unbroadcast(g, (1, 1, 1)), g.sum().reshape(1, 1, 1))
    np.testing.assert_array_equal(unbroadcast(g, ()), g.sum())
    assert unbroadcast(g, (2, 3, 4)) is g
    assert broadcast_axes((2, 3, 4), (3, 1)) == ((0,), (1,))


def test_rejects_a_shape_that_was_not_broadcast():
    with pytest.raises(ValueError, match="not a broadcast"):
        unbroadcast(np.zeros((2, 3)), (4,))


@given(mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, max_side=4), st.integers(0, 10**6))
def test_matches_the_definition(shapes, seed):
    """<unbroadcast(g), x> == <g, broadcast_to(x)> for all x: unbroadcast is broadcast's adjoint."""
    rng = np.random.default_rng(seed)
    for shape in shapes.input_shapes:
        g = rng.standard_normal(shapes.result_shape)
        x = rng.standard_normal(shape)
        reduced = unbroadcast(g, shape)
        assert reduced.shape == shape
        np.testing.assert_allclose(np.sum(reduced * x), np.sum(g * np.broadcast_to(x, shapes.result_shape)),
                                   rtol=1e-12, atol=1e-12)
