"""Attention and matmul kernels: the NumPy reference (the oracle), Numba CPU and Triton GPU.

    kernels.attention_forward(q, k, v, causal=False, key_padding_mask=None, scale=None,
                              backend="reference") -> (out, lse)
    kernels.attention_backward(dout, q, k, v, out, lse, ..., backend=...) -> (dq, dk, dv)
    kernels.matmul(a, b, backend=...)
    kernels.available_backends()

This package depends on numpy only; numba and triton(+torch) are optional and imported lazily.
It never imports minilm.
"""
from .dispatch import (attention, attention_backward, attention_forward, available_backends, matmul,
                       resolve_backend)
from .errors import BackendNotAvailable, KernelInputError

__all__ = ["attention", "attention_forward", "attention_backward", "matmul", "available_backends",
           "resolve_backend", "BackendNotAvailable", "KernelInputError"]
