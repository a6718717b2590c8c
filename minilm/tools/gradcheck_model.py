"""gradcheck_model: a whole model's parameter gradients against float64 finite differences.

    report = minilm.gradcheck_model(model, lambda m: task_loss(m, batch), samples_per_param=5)
    print(report)           # one row per parameter: checked elements, max abs/rel error, pass/fail

The model is copied to float64 (the original is untouched), dropout is switched off (eval mode),
and for each parameter a seeded random sample of elements is perturbed by +-eps:
    numeric = (L(w + eps) - L(w - eps)) / (2 eps),  analytic = dL/dw from one backward pass.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

from ..autograd.grad_mode import no_grad


@dataclass
class ParamCheck:
    name: str
    shape: tuple
    checked: int
    max_abs_error: float
    max_rel_error: float
    worst_index: tuple
    passed: bool


@dataclass
class ModelGradcheckReport:
    passed: bool
    eps: float
    atol: float
    rtol: float
    params: list = field(default_factory=list)

    def __bool__(self):
        return self.passed

    def failures(self) -> list:
        return [p for p in self.params if not p.passed]

    def __str__(self):
        lines = [f"gradcheck_model {'PASSED' if self.passed else 'FAILED'}: {len(self.params)} parameters "
                 f"(eps={self.eps:g}, atol={self.atol:g}, rtol={self.rtol:g})",
                 f"{'parameter':<44} {'shape':<14} {'n':>3} {'max abs err':>12} {'max rel err':>12}  ok"]
        for p in self.params:
            lines.append(f"{p.name[:44]:<44} {str(p.shape):<14} {p.checked:>3} {p.max_abs_error:>12.3e} "
                         f"{p.max_rel_error:>12.3e}  {'yes' if p.passed else 'NO'}")
        return "\n".join(lines)

    __repr__ = __str__


def gradcheck_model(model, loss_fn, samples_per_param: int = 4, eps: float = 1e-6, atol: float = 1e-6,
                    rtol: float = 1e-4, seed: int = 0, only: list[str] | None = None) -> ModelGradcheckReport:
    """Check d loss_fn(model) / d parameter on a random sample of elements of every trainable parameter."""
    checked_model = copy.deepcopy(model).to(np.float64)
    checked_model.eval()
    rng = np.random.default_rng(seed)
    params = [(n, p) for n, p in checked_model.named_parameters() if p.requires_grad
              and (only is None or any(key in n for key in only))]
    for _, p in params:
        p.grad = None
    loss = loss_fn(checked_model)
    loss.backward()
    report = ModelGradcheckReport(True, eps, atol, rtol)
    with no_grad():
        for name, p in params:
            analytic = np.zeros(p.shape) if p.grad is None else p.grad
            flat = p.data.reshape(-1)
            picks = rng.choice(flat.size, size=min(samples_per_param, flat.size), replace=False)
            errors, rels, oks = [], [], []
            for index in picks:
                original = flat[index]
                flat[index] = original + eps
                plus = loss_fn(checked_model).item()
                flat[index] = original - eps
                minus = loss_fn(checked_model).item()
                flat[index] = original
                numeric = (plus - minus) / (2 * eps)
                got = analytic.reshape(-1)[index]
                err = abs(got - numeric)
                errors.append(err)
                rels.append(err / max(abs(numeric), 1e-12))
                oks.append(err <= atol + rtol * abs(numeric) and np.isfinite(got))
            worst = int(np.argmax(errors))
            check = ParamCheck(name, p.shape, len(picks), float(max(errors)), float(max(rels)),
                               tuple(int(v) for v in np.unravel_index(picks[worst], p.shape)), bool(all(oks)))
            report.params.append(check)
            report.passed &= check.passed
    return report
