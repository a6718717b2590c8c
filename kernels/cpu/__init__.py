"""Numba CPU kernels (backend="numba"): blocked matmul and flash-style attention.

    attention_forward(q, k, v, causal=False, key_padding_mask=None, scale=None) -> (out, lse)
    attention_backward(dout, q, k, v, out, lse, causal=..., key_padding_mask=..., scale=...)
        -> (dq, dk, dv)
    matmul(a, b)

Same signatures and contract as kernels.reference (the oracle they are tested against).
Importing this package without numba installed raises ImportError, which kernels.dispatch
turns into "install the CPU extra". Kernels compile on first use and are cached on disk
(cache=True); NUMBA_DISABLE_JIT=1 runs them as plain Python for debugging.
"""
import numba  # noqa: F401  (ImportError here means: the cpu extra is not installed)

from .attention import attention_backward, attention_forward
from .matmul import matmul

__all__ = ["attention_forward", "attention_backward", "matmul", "is_usable"]


def is_usable() -> bool:
    return True
