"""A first look: build a small expression, run backward, and check it against finite differences."""
from __future__ import annotations

import numpy as np

from .autograd import tensor
from .autograd.gradcheck import gradcheck


def run_demo(seed: int = 0) -> bool:
    rng = np.random.default_rng(seed)
    x = tensor(rng.standard_normal((4, 3)), requires_grad=True, name="x")      # (B=4, in=3)
    w = tensor(rng.standard_normal((3, 2)), requires_grad=True, name="w")      # (in=3, out=2)
    b = tensor(rng.standard_normal((2,)), requires_grad=True, name="b")        # (out=2,) broadcast over B

    def loss_fn(x, w, b):
        hidden = (x @ w + b).tanh()                                            # (4, 2)
        return (hidden * hidden).mean()

    loss = loss_fn(x, w, b)
    loss.backward()
    print(f"loss = mean(tanh(x @ w + b)^2) = {loss.item():.6f}")
    print("dloss/db (b was broadcast over 4 rows, so its gradient is summed over them):", b.grad)
    report = gradcheck(loss_fn, [x, w, b])
    print(report)
    return report.passed
