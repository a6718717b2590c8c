"""Keep BLAS single-threaded while the attention kernels run.

Inside the jitted kernels np.dot calls BLAS through scipy.linalg.cython_blas, i.e. scipy's own
OpenBLAS (not numpy's). The kernels already run one job per core (prange); if that OpenBLAS
also starts its threads for every block product, the two thread pools fight over the cores
(measured: attention fwd+bwd at N=2048 went from 1.24 s to 0.31 s with BLAS held to one thread).
`single_threaded_blas()` sets scipy's OpenBLAS to one thread and restores the old count after.
Where that library cannot be found (another BLAS, another OS) it does nothing.
"""
from __future__ import annotations

import contextlib
import ctypes
import glob
import os
from functools import lru_cache

_SETTERS = ("scipy_openblas_set_num_threads", "scipy_openblas_set_num_threads64_", "openblas_set_num_threads")
_GETTERS = ("scipy_openblas_get_num_threads", "scipy_openblas_get_num_threads64_", "openblas_get_num_threads")


def _first_symbol(library, names):
    for name in names:
        function = getattr(library, name, None)
        if function is not None:
            return function
    return None


@lru_cache(maxsize=None)
def _scipy_openblas():
    """(get_num_threads, set_num_threads) of the OpenBLAS behind scipy.linalg.cython_blas, or None."""
    try:
        import scipy
        import scipy.linalg.cython_blas  # noqa: F401  (the module numba's np.dot calls into)
    except ImportError:
        return None
    root = os.path.dirname(os.path.dirname(scipy.__file__))
    for path in sorted(glob.glob(os.path.join(root, "scipy.libs", "*openblas*"))):
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        getter, setter = _first_symbol(library, _GETTERS), _first_symbol(library, _SETTERS)
        if getter is not None and setter is not None:
            getter.restype = ctypes.c_int
            setter.argtypes = [ctypes.c_int]
            return getter, setter
    return None


@contextlib.contextmanager
def single_threaded_blas():
    functions = _scipy_openblas()
    if functions is None:
        yield
        return
    get_num_threads, set_num_threads = functions
    previous = get_num_threads()
    set_num_threads(1)
    try:
        yield
    finally:
        set_num_threads(previous)
