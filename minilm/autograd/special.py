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
    ax = np.abs(x)
    t = 1.0 / (1.0 + _P * ax)
    poly = t * (_A[0] + t * (_A[1] + t * (_A[2] + t * (_A[3] + t * _A[4]))))
    return (np.sign(x) * (1.0 - poly * np.exp(-ax * ax))).astype(x.dtype, copy=False)
