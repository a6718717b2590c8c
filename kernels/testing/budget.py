"""The error budget: how far from the float64 truth a correct kernel may be.

    budget = c * naive_error + floor
    naive_error = max |naive - truth|, naive = the textbook formula run in the kernel's precision
    c = 2 for out and lse, 3 for dq, dk, dv
    floor = FLOOR_FACTOR * eps * (1 + max_logit) * magnitude

A logit computed with a relative rounding error eps is off by eps * max_logit (max_logit is the
largest scale * |q|.|k| over visible pairs), and exp() turns that into a relative error of the
same size in every probability; `magnitude` is the result recomputed with absolute values
(oracle.magnitudes). The floor is what any correct summation order may lose, so a correct kernel
that happens to round differently from the naive one (blocked, online softmax, other
accumulation order) is never rejected, even at logits near 1e3, while a wrong formula is off by
the magnitude itself, many orders above the floor outside float16/bfloat16.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MULTIPLE = {"out": 2.0, "lse": 2.0, "dq": 3.0, "dk": 3.0, "dv": 3.0}
FLOOR_FACTOR = 8.0


@dataclass(frozen=True)
class Budget:
    naive_error: float
    multiple: float
    floor: float

    @property
    def value(self) -> float:
        return self.multiple * self.naive_error + self.floor

    def explain(self) -> str:
        return f"{self.value:.3g} (= {self.multiple:g} x naive {self.naive_error:.3g} + floor {self.floor:.3g})"

    def to_dict(self) -> dict:
        return {"value": self.value, "naive_error": self.naive_error, "multiple": self.multiple, "floor": self.floor}


def max_error(result: np.ndarray, truth: np.ndarray, where=None) -> np.ndarray:
    """Element-wise |result - truth| where `where` (default: truth finite); NaN counts as inf."""
    where = np.isfinite(truth) if where is None else where
    with np.errstate(invalid="ignore", over="ignore"):
        error = np.abs(np.where(where, result, 0.0) - np.where(where, truth, 0.0))
    return np.where(np.isnan(error), np.inf, error)


def budget_for(name: str, naive_error: float, eps: float, max_logit: float, magnitude: float) -> Budget:
    floor = FLOOR_FACTOR * eps * (1.0 + max_logit) * max(magnitude, np.finfo(np.float64).tiny)
    return Budget(float(naive_error), MULTIPLE[name], float(floor))
