"""Backend selection: one call, several bodies behind it.

backend = "reference" (NumPy, always there) | "numba" (kernels.cpu, extra `cpu`) |
          "triton" (kernels.gpu, extra `gpu`) | "auto" (the fastest installed and applicable:
          triton when a CUDA GPU is visible, else numba when installed, else reference).
Every backend module exposes attention_forward, attention_backward and matmul with the
reference's signatures, so any backend's forward pairs with any backend's backward.
"""
from __future__ import annotations

import importlib
from functools import lru_cache

from .errors import BackendNotAvailable, KernelInputError

BACKENDS = ("reference", "numba", "triton")
_MODULES = {"reference": "kernels.reference", "numba": "kernels.cpu", "triton": "kernels.gpu"}
_INSTALL_HINTS = {
    "numba": "install the CPU extra: pip install 'minilm[cpu]' (numba)",
    "triton": "install the GPU extra: pip install 'minilm[gpu]' (triton and torch)",
}


@lru_cache(maxsize=None)
def _load(backend: str):
    try:
        return importlib.import_module(_MODULES[backend])
    except ImportError as error:
        raise BackendNotAvailable(
            f"backend={backend!r} is not available ({error}); {_INSTALL_HINTS[backend]}") from error


def _has_cuda() -> bool:
    try:
        import torch  # only to ask whether a GPU is visible; never imported at module load
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


@lru_cache(maxsize=None)
def available_backends() -> tuple[str, ...]:
    """Backends whose dependencies import here (triton listed only with a usable GPU or interpreter)."""
    found = ["reference"]
    for name in ("numba", "triton"):
        try:
            module = _load(name)
        except BackendNotAvailable:
            continue
        usable = getattr(module, "is_usable", lambda: True)
        if usable():
            found.append(name)
    return tuple(found)


def resolve_backend(backend: str) -> str:
    """Map "auto" to a concrete backend and check the name."""
    if backend == "auto":
        names = available_backends()
        if "triton" in names and _has_cuda():
            return "triton"
        return "numba" if "numba" in names else "reference"
    if backend not in BACKENDS:
        raise KernelInputError(f"backend must be one of {BACKENDS + ('auto',)}; got {backend!r}")
    return backend


def get_backend(backend: str):
    return _load(resolve_backend(backend))


def attention_forward(q, k, v, causal=False, key_padding_mask=None, scale=None, backend="reference"):
    """Fused attention forward on the chosen backend. Returns (out (B, H, Nq, D), lse (B, H, Nq))."""
    return get_backend(backend).attention_forward(q, k, v, causal=causal, key_padding_mask=key_padding_mask,
                                                  scale=scale)


def attention_backward(dout, q, k, v, out, lse, causal=False, key_padding_mask=None, scale=None,
                       backend="reference"):
    """Attention backward on the chosen backend. Returns (dq, dk, dv)."""
    return get_backend(backend).attention_backward(dout, q, k, v, out, lse, causal=causal,
                                                   key_padding_mask=key_padding_mask, scale=scale)


attention = attention_forward


def matmul(a, b, backend="reference"):
    """2-D matrix product on the chosen backend."""
    return get_backend(backend).matmul(a, b)
