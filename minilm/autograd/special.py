"""Special functions NumPy lacks: erf (for the exact GELU).

float64: math.erf element by element (libm, correctly rounded to ~1 ulp); used where gradients are
checked, so accuracy matters more than speed. float32: Abramowitz & Stegun 7.1.26, absolute error
< 1.5e-7 (about float32's own rounding), vectorised.
"""
from __future__ import annotations

import math

import numpy as np

_erf_exact = np.frompyfunc(math.erf, 1, 1)
_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)
_P = 0.3275911


def erf(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype == np.float64:
        return np.asarray(_erf_exact(x), dtype=np.float64)
    # in place, one temporary at a time: this runs on every GELU activation of a float32 model
    ax = np.abs(x)
    t = ax * x.dtype.type(_P)
    t += 1
    np.reciprocal(t, out=t)                                     # t = 1 / (1 + p|x|)
    poly = t * x.dtype.type(_A[4])
    for coefficient in (_A[3], _A[2], _A[1], _A[0]):
        poly += x.dtype.type(coefficient)
        poly *= t                                               # Horner: t (a0 + t (a1 + ...))
    np.square(ax, out=ax)
    np.negative(ax, out=ax)
    np.exp(ax, out=ax)                                          # exp(-x^2)
    poly *= ax
    np.subtract(1, poly, out=poly)                              # erf(|x|)
    return np.copysign(poly, x, out=poly)
