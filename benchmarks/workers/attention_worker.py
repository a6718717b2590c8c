"""One library's side of bench_attention_cpu.py: `python attention_worker.py numba|reference|torch`.

Commands (JSON lines, see protocol.py): setup(n, causal, mode, seed) builds fp32 inputs
(B=1, H=8, D=64, the same in every worker) and runs once to warm up (compile, allocate);
validate() compares head 0 with the float64 NumPy reference; time() times one sample (one call,
or several back to back for short calls) and returns seconds per call; memory()
measures the peak extra resident memory of one run; info() reports versions and threads.
"""
from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from protocol import THREADS, calls_for, openblas_corename, peak_extra_bytes, serve, timed  # noqa: E402

LIBRARY = sys.argv[1]
BATCH, HEADS, HEAD_DIM = 1, 8, 64
state = {}

if LIBRARY == "torch":
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(THREADS)
elif LIBRARY == "numba":
    from kernels import cpu as backend
else:
    from kernels import reference as backend


def make_run(n, causal, mode, seed):
    rng = np.random.default_rng(seed)
    q, k, v, dout = (rng.standard_normal((BATCH, HEADS, n, HEAD_DIM), dtype=np.float32) for _ in range(4))
    state.update(inputs=(q, k, v, dout), causal=causal, mode=mode)
    if LIBRARY == "torch":
        leaves = [torch.from_numpy(x).requires_grad_(mode == "fwdbwd") for x in (q, k, v)]
        grad_out = torch.from_numpy(dout)

        def run():
            for leaf in leaves:
                leaf.grad = None
            if mode == "fwd":
                with torch.no_grad():
                    out = F.scaled_dot_product_attention(*leaves, is_causal=causal)
                return (out.numpy(),)
            out = F.scaled_dot_product_attention(*leaves, is_causal=causal)
            out.backward(grad_out)
            return (out.detach().numpy(),) + tuple(leaf.grad.numpy() for leaf in leaves)
        return run

    def run():
        out, lse = backend.attention_forward(q, k, v, causal=causal)
        if mode == "fwd":
            return (out,)
        return (out,) + tuple(backend.attention_backward(dout, q, k, v, out, lse, causal=causal))
    return run


def setup(n, causal, mode, seed=0):
    state.clear()
    state["run"] = make_run(n, causal, mode, seed)
    state["run"]()                                            # warm-up: compile, first touch
    state["calls"] = calls_for(timed(state["run"]))
    return {"calls_per_sample": state["calls"]}


def validate():
    """Max relative error (|got - want| / max |want|) of head 0 against the float64 reference."""
    from kernels import reference
    results = state["run"]()
    q, k, v, dout = (x[:, :1].astype(np.float64) for x in state["inputs"])
    out, lse = reference.attention_forward(q, k, v, causal=state["causal"])
    wanted = (out,)
    if state["mode"] == "fwdbwd":
        wanted += reference.attention_backward(dout, q, k, v, out, lse, causal=state["causal"])
    errors = [float(np.max(np.abs(got[:, :1] - want)) / np.max(np.abs(want))) for got, want in zip(results, wanted)]
    return {"max_rel_error": max(errors)}


def time_once():
    return {"seconds": timed(state["run"], state["calls"])}


def memory():
    return {"peak_extra_bytes": peak_extra_bytes(state["run"])}


def info():
    import numpy
    details = dict(library=LIBRARY, numpy=numpy.__version__, threads=THREADS,
                   numpy_openblas_core=openblas_corename(os.path.join(os.path.dirname(numpy.__file__),
                                                                      os.pardir, "numpy.libs", "*openblas*")))
    if LIBRARY == "torch":
        details.update(torch=torch.__version__, torch_threads=torch.get_num_threads(),
                       torch_cpu_capability=torch.backends.cpu.get_cpu_capability())
    if LIBRARY == "numba":
        import numba
        import scipy
        details.update(numba=numba.__version__, numba_threads=numba.get_num_threads(),
                       numba_threading_layer=numba.config.THREADING_LAYER, scipy=scipy.__version__,
                       scipy_openblas_core=openblas_corename(os.path.join(os.path.dirname(scipy.__file__),
                                                                          os.pardir, "scipy.libs", "*openblas*")))
    return details


if __name__ == "__main__":
    serve(dict(setup=setup, validate=validate, time=time_once, memory=memory, info=info))
