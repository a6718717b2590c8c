"""Every primitive op: analytic gradient vs float64 central differences, on hypothesis-drawn shapes."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minilm
from tests.autograd.op_table import OPS
from tests.autograd.strategies import broadcastable_pair, shapes, values

ELEMENTWISE = [op for op in OPS if op.name != "matmul"]


def draw_inputs(data, spec):
    if spec.arity == 2 and spec.broadcast:
        input_shapes = data.draw(broadcastable_pair())
    else:
        shape = data.draw(shapes(min_dims=spec.min_dims))
        input_shapes = [shape] * spec.arity
    return [data.draw(values(s, spec.low, spec.high, spec.away_from_zero)) for s in input_shapes]


@pytest.mark.parametrize("spec", ELEMENTWISE, ids=lambda s: s.name)
@given(data=st.data())
def test_op_passes_gradcheck(spec, data):
    arrays = draw_inputs(data, spec)
    tensors = [minilm.tensor(a, requires_grad=True) for a in arrays]
    report = minilm.gradcheck(spec.ours, tensors)
    assert report.passed, f"{spec.name}\n{report}"


@st.composite
def matmul_shapes(draw):
    """Shapes for a @ b: 1-D vectors, plain matrices and broadcast batch axes."""
    m, k, n = (draw(st.integers(1, 4)) for _ in range(3))
    kind = draw(st.sampled_from(["vec-vec", "vec-mat", "mat-vec", "mat-mat", "batch", "batch-broadcast"]))
    if kind == "vec-vec":
        return (k,), (k,)
    if kind == "vec-mat":
        return (k,), (k, n)
    if kind == "mat-vec":
        return (m, k), (k,)
    if kind == "mat-mat":
        return (m, k), (k, n)
    batch = draw(st.integers(1, 3))
    if kind == "batch":
        return (batch, m, k), (batch, k, n)
    return (2, batch, m, k), (k, n)           # b's batch axes broadcast: its gradient is summed


@given(shapes_ab=matmul_shapes(), data=st.data())
def test_matmul_passes_gradcheck(shapes_ab, data):
    a, b = (minilm.tensor(data.draw(values(s)), requires_grad=True) for s in shapes_ab)
    report = minilm.gradcheck(lambda x, y: x @ y, [a, b])
    assert report.passed, str(report)


def test_gelu_float32_erf_is_close_to_exact():
    x = np.linspace(-6, 6, 2001)
    exact = minilm.tensor(x).gelu().data
    fast = minilm.tensor(x.astype(np.float32)).gelu().data
    assert fast.dtype == np.float32
    np.testing.assert_allclose(fast, exact, atol=5e-7)
