"""Gradient checking as library API: analytic gradients vs float64 central differences.

    report = minilm.gradcheck(lambda x, w: (x @ w).tanh().sum(), [x, w])
    print(report)            # one row per input: worst element, max abs and rel error, pass/fail

For each input that requires grad and each checked element i (all, or a seeded random sample):
    numeric_i  = (L(x + eps e_i) - L(x - eps e_i)) / (2 eps)
    analytic_i = dL/dx_i from backward
    pass when |analytic_i - numeric_i| <= atol + rtol * |numeric_i|
A non-scalar output is projected to a scalar L = sum(out * r) with a fixed random r, so every
output element is checked at once.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from ..errors import GradError
from .grad_mode import no_grad
from .tensor import Tensor

_DEFAULTS = {np.dtype(np.float64): dict(eps=1e-6, atol=1e-5, rtol=1e-3),
             np.dtype(np.float32): dict(eps=1e-2, atol=1e-2, rtol=5e-2)}


@dataclass
class InputCheck:
    index: int
    name: str
    shape: tuple
    checked: int
    max_abs_error: float
    max_rel_error: float
    worst_index: tuple
    analytic: float
    numeric: float
    passed: bool


@dataclass
class GradcheckReport:
    passed: bool
    eps: float
    atol: float
    rtol: float
    inputs: list = field(default_factory=list)

    def __bool__(self):
        return self.passed

    def __str__(self):
        head = f"gradcheck {'PASSED' if self.passed else 'FAILED'} (eps={self.eps:g}, atol={self.atol:g}, rtol={self.rtol:g})"
        rows = [f"{'input':<12} {'shape':<16} {'checked':>7} {'max abs err':>12} {'max rel err':>12} "
                f"{'worst at':<14} {'analytic':>12} {'numeric':>12}  ok"]
        for c in self.inputs:
            rows.append(f"{c.name:<12} {str(c.shape):<16} {c.checked:>7} {c.max_abs_error:>12.3e} "
                        f"{c.max_rel_error:>12.3e} {str(c.worst_index):<14} {c.analytic:>12.5g} "
                        f"{c.numeric:>12.5g}  {'yes' if c.passed else 'NO'}")
        return "\n".join([head] + rows)

    __repr__ = __str__


def _scalar_loss(outputs, projections):
    total = 0.0
    for out, r in zip(outputs, projections):
        total = total + float(np.sum(out.data.astype(np.float64) * r))
    return total


def _as_outputs(result):
    outs = result if isinstance(result, (tuple, list)) else (result,)
    for o in outs:
        if not isinstance(o, Tensor):
            raise GradError(f"gradcheck: fn must return Tensor(s); got {type(o).__name__}")
    return outs


def gradcheck(fn, inputs, eps=None, atol=None, rtol=None, max_elements: int | None = 2000, seed: int = 0,
              raise_on_fail: bool = False, names=None) -> GradcheckReport:
    """Compare fn's analytic gradients with central differences for every input requiring grad."""
    inputs = list(inputs)
    targets = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not targets:
        raise GradError("gradcheck: no input requires grad; pass tensors made with requires_grad=True")
    dtypes = {inputs[i].dtype for i in targets}
    low_precision = any(d != np.float64 for d in dtypes)
    if low_precision:
        warnings.warn("gradcheck in float32 (or lower) is unreliable: finite differences lose about half the "
                      "digits; convert inputs and parameters to float64", stacklevel=2)
    defaults = _DEFAULTS[np.dtype(np.float32) if low_precision else np.dtype(np.float64)]
    eps = defaults["eps"] if eps is None else eps
    atol = defaults["atol"] if atol is None else atol
    rtol = defaults["rtol"] if rtol is None else rtol
    rng = np.random.default_rng(seed)

    saved_grads = [inputs[i].grad for i in targets]
    for i in targets:
        inputs[i].grad = None
    outputs = _as_outputs(fn(*inputs))
    # a scalar output is checked as it is; others are projected with fixed random weights
    projections = [np.ones(o.shape) if o.size == 1 else rng.standard_normal(o.shape) for o in outputs]
    loss = None
    for out, r in zip(outputs, projections):
        term = (out * Tensor(r.astype(out.dtype))).sum() if out.requires_grad else None
        if term is not None:
            loss = term if loss is None else loss + term
    analytic = {}
    if loss is not None:
        loss.backward()
    for i in targets:
        g = inputs[i].grad
        analytic[i] = np.zeros(inputs[i].shape) if g is None else g.astype(np.float64)
    for i, g in zip(targets, saved_grads):
        inputs[i].grad = g

    report = GradcheckReport(True, eps, atol, rtol)
    with no_grad():
        for i in targets:
            x = inputs[i]
            flat = x.data.reshape(-1)                   # a view: perturb in place, restore after
            if x.data.base is not None and not np.shares_memory(flat, x.data):
                raise GradError("gradcheck: input data must be contiguous")
            n = flat.size
            picks = np.arange(n) if max_elements is None or n <= max_elements else \
                np.sort(rng.choice(n, size=max_elements, replace=False))
            numeric = np.empty(len(picks))
            for j, p in enumerate(picks):
                original = flat[p]
                flat[p] = original + eps
                plus = _scalar_loss(_as_outputs(fn(*inputs)), projections)
                flat[p] = original - eps
                minus = _scalar_loss(_as_outputs(fn(*inputs)), projections)
                flat[p] = original
                numeric[j] = (plus - minus) / (2 * eps)
            got = analytic[i].reshape(-1)[picks]
            abs_err = np.abs(got - numeric)
            rel_err = abs_err / np.maximum(np.abs(numeric), 1e-12)
            ok = abs_err <= atol + rtol * np.abs(numeric)
            finite = np.isfinite(got).all() and np.isfinite(numeric).all()
            worst = int(np.argmax(abs_err - (atol + rtol * np.abs(numeric)))) if len(picks) else 0
            name = (names[i] if names else None) or x.name or f"input[{i}]"
            check = InputCheck(i, name, x.shape, len(picks), float(abs_err.max(initial=0)),
                               float(rel_err.max(initial=0)),
                               tuple(int(v) for v in np.unravel_index(picks[worst], x.shape)) if len(picks) else (),
                               float(got[worst]) if len(picks) else 0.0,
                               float(numeric[worst]) if len(picks) else 0.0,
                               bool(ok.all() and finite))
            report.inputs.append(check)
            report.passed &= check.passed
    if raise_on_fail and not report.passed:
        raise GradError(f"gradcheck failed:\n{report}")
    return report
