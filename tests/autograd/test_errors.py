"""Errors that teach: the op, the expected and the actual shape or dtype; never a NumPy traceback."""
import numpy as np
import pytest

import minilm
from minilm import DTypeError, ShapeError


def f64(*shape):
    return minilm.tensor(np.ones(shape), requires_grad=True)


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "maximum"])
def test_broadcast_mismatch_names_op_and_shapes(op):
    fn = getattr(minilm, op)
    with pytest.raises(ShapeError, match=rf"{op}: cannot broadcast shapes \(2, 3\) and \(4,\)"):
        fn(f64(2, 3), f64(4))


def test_matmul_mismatch_names_both_shapes_and_axes():
    with pytest.raises(ShapeError, match=r"matmul: a\(2, 3\) @ b\(4, 5\): a's last axis \(3\) must equal b's "
                                         r"second-to-last axis \(4\)"):
        f64(2, 3) @ f64(4, 5)
    with pytest.raises(ShapeError, match="at least 1-D"):
        minilm.matmul(f64(), f64(3))


def test_int_inputs_to_float_ops_are_dtype_errors():
    ids = minilm.tensor(np.arange(3))
    for method in ("exp", "log", "sqrt", "tanh", "sigmoid", "gelu"):
        with pytest.raises(DTypeError, match=rf"{method}: needs a floating-point input; got dtype int"):
            getattr(ids, method)()


def test_shape_op_errors():
    with pytest.raises(ShapeError, match=r"reshape: cannot reshape \(2, 3\) \(6 elements\) into \(4,\)"):
        f64(2, 3).reshape(4)
    with pytest.raises(ShapeError, match="expand: cannot broadcast shape"):
        f64(2, 3).expand(4, 3)
    with pytest.raises(ShapeError, match="getitem"):
        f64(2)[5]
    with pytest.raises(ShapeError, match="gather: index values must lie in"):
        f64(2, 3).gather(1, np.array([[0, 3], [1, 1]]))
    with pytest.raises(ShapeError, match="concatenate"):
        minilm.concatenate([f64(2, 3), f64(2, 4)], axis=0)
    with pytest.raises(DTypeError, match="where: cond must be boolean"):
        minilm.where(np.ones(2), f64(2), f64(2))
    with pytest.raises(ShapeError, match="sum: axis 3 is out of range"):
        f64(2, 3).sum(axis=3)
