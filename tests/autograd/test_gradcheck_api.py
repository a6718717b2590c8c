"""gradcheck as library API: passes correct ops, fails a wrong backward with a readable report."""
import numpy as np
import pytest

import minilm
from minilm import GradError


class WrongSquare(minilm.Function):
    """Forward a^2 with a deliberately wrong backward (forgets the factor 2)."""
    formula = "da = g * a   (WRONG: should be 2 * g * a)"

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return a * a

    @staticmethod
    def backward(ctx, g):
        return g * ctx.saved[0]


def test_gradcheck_fails_a_wrong_backward_with_a_readable_report():
    x = minilm.tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True, name="x")
    report = minilm.gradcheck(lambda a: WrongSquare.apply(a).sum(), [x])
    assert not report.passed and not bool(report)
    text = str(report)
    assert "FAILED" in text and "x" in text and "NO" in text
    worst = report.inputs[0]
    assert worst.worst_index == (2,)                       # the largest |a| has the largest error
    assert worst.analytic == pytest.approx(3.0) and worst.numeric == pytest.approx(6.0)
    with pytest.raises(GradError, match="gradcheck failed"):
        minilm.gradcheck(lambda a: WrongSquare.apply(a).sum(), [x], raise_on_fail=True)


def test_gradcheck_samples_large_inputs_with_a_seed_and_handles_vector_outputs():
    rng = np.random.default_rng(0)
    x = minilm.tensor(rng.standard_normal((60, 50)), requires_grad=True)
    report = minilm.gradcheck(lambda a: a.tanh() * 2, [x], max_elements=100, seed=3)
    assert report.passed and report.inputs[0].checked == 100
    again = minilm.gradcheck(lambda a: a.tanh() * 2, [x], max_elements=100, seed=3)
    assert again.inputs[0].worst_index == report.inputs[0].worst_index


def test_gradcheck_warns_in_float32_and_leaves_existing_grads_alone():
    x = minilm.tensor(np.array([0.5, 1.5], np.float32), requires_grad=True)
    x.grad = np.array([7.0, 7.0], np.float32)
    with pytest.warns(UserWarning, match="float32"):
        report = minilm.gradcheck(lambda a: (a * a).sum(), [x])
    assert report.passed
    np.testing.assert_array_equal(x.grad, [7.0, 7.0])


def test_gradcheck_needs_an_input_that_requires_grad():
    with pytest.raises(GradError, match="no input requires grad"):
        minilm.gradcheck(lambda a: a.sum(), [minilm.tensor(np.ones(2))])
