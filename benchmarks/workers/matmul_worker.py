"""One library's side of bench_matmul_cpu.py: `python matmul_worker.py numba|numpy`.

Commands (JSON lines, see protocol.py): setup(n, dtype) builds a, b (n x n, the same in every
worker) and warms up; validate() returns max |c - a @ b| / (|a| @ |b|) against float64;
time() times one sample; peak() measures the FMA rate this machine reaches on THREADS threads
(numba worker only); info() reports versions and threads.
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from protocol import THREADS, calls_for, openblas_corename, serve, timed  # noqa: E402

LIBRARY = sys.argv[1]
state = {}

if LIBRARY == "numba":
    from kernels import cpu
    multiply = cpu.matmul
else:
    multiply = np.matmul


def setup(n, dtype, seed=0):
    rng = np.random.default_rng(seed)
    a, b = (rng.standard_normal((n, n)).astype(dtype) for _ in range(2))
    state.update(a=a, b=b, run=lambda: multiply(a, b))
    state["run"]()
    state["calls"] = calls_for(timed(state["run"]))
    return {"calls_per_sample": state["calls"]}


def validate():
    a, b = state["a"].astype(np.float64), state["b"].astype(np.float64)
    error = np.abs(state["run"]().astype(np.float64) - a @ b) / (np.abs(a) @ np.abs(b))
    return {"max_rel_error": float(error.max())}


def time_once():
    return {"seconds": timed(state["run"], state["calls"])}


def peak(dtype, seconds=1.0):
    """GFLOP/s of independent FMA chains held in registers, one per thread (no memory traffic)."""
    import numba
    from numba import prange
    from kernels.cpu._jit import jit, register_tile

    @jit(parallel=True)
    def fma_chains(iterations, out):
        for thread in prange(out.shape[0]):
            acc = register_tile(4, 64, out.dtype)
            scale, shift = out.dtype.type(0.999999), out.dtype.type(1e-6)
            for _ in range(iterations):
                for i in range(4):
                    for j in range(64):
                        acc[i, j] = acc[i, j] * scale + shift
            out[thread] = acc.sum()

    out = np.zeros(numba.get_num_threads(), dtype=dtype)
    fma_chains(10, out)
    iterations, best = 100_000, 0.0
    for _ in range(5):
        start = time.perf_counter()
        fma_chains(iterations, out)
        elapsed = time.perf_counter() - start
        best = max(best, 2 * 4 * 64 * iterations * out.size / elapsed / 1e9)
    return {"gflops": best, "threads": int(out.size)}


def info():
    details = dict(library=LIBRARY, numpy=np.__version__, threads=THREADS,
                   numpy_openblas_core=openblas_corename(os.path.join(os.path.dirname(np.__file__),
                                                                      os.pardir, "numpy.libs", "*openblas*")))
    if LIBRARY == "numba":
        import numba
        details.update(numba=numba.__version__, numba_threads=numba.get_num_threads())
    return details


if __name__ == "__main__":
    serve(dict(setup=setup, validate=validate, time=time_once, peak=peak, info=info))
