"""Graph pictures: structure (ops, leaves, shapes, gradient norms) and a rendered file."""
import numpy as np
import pytest

import minilm
from minilm import viz


def test_graph_structure_has_ops_leaves_and_edge_gradient_norms_and_keeps_grads(tmp_path):
    a = minilm.tensor(np.ones((2, 3)), requires_grad=True, name="a")
    b = minilm.tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True, name="b")
    a.grad = np.full((2, 3), 5.0)
    y = (a * b).sum()
    s = viz.graph_structure(y)
    labels = sorted(n["label"] for n in s["nodes"])
    assert labels == ["a", "b", "mul", "sum"]
    to_b = [e for e in s["edges"] if e["shape"] == "(3,)"][0]
    assert to_b["grad_norm"] == pytest.approx(np.linalg.norm([2.0, 2.0, 2.0]))   # after un-broadcasting
    np.testing.assert_array_equal(a.grad, np.full((2, 3), 5.0))                   # restored
    assert b.grad is None
    assert "cluster" not in viz.to_dot(s) and "|g|=" in viz.to_dot(s)
    out = viz.graph(y, tmp_path / "g.png", engine="matplotlib")
    assert out.stat().st_size > 1000 and out.read_bytes()[:4] == b"\x89PNG"


def test_graph_of_a_leaf_is_a_clear_error():
    with pytest.raises(minilm.GradError, match="has no graph"):
        viz.graph_structure(minilm.tensor(np.ones(2), requires_grad=True))
