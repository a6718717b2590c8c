"""Calling a user's kernel: layout (BHSD or BSHD), NumPy or torch arrays, gradients from a
backward function or from torch autograd. Everything handed back is float64 NumPy in the
canonical layout q (B, H, Nq, D), lse (B, H, Nq).

    forward(q, k, v, *, causal, scale, key_padding_mask) -> out  or  (out, lse)
    backward(dout, q, k, v, out, lse, *, causal, scale, key_padding_mask) -> (dq, dk, dv)

In the BSHD layout q is (B, Nq, H, D), k and v (B, Nk, Hkv, D) and so are out, dq, dk, dv;
lse stays (B, H, Nq), as FlashAttention returns it.
"""
from __future__ import annotations

import numpy as np

TORCH_DTYPES = ("float64", "float32", "float16", "bfloat16")
NUMPY_DTYPES = ("float64", "float32", "float16")


def _torch():
    import torch  # optional: only when the kernel is declared a torch function
    return torch


def is_torch_tensor(x) -> bool:
    return type(x).__module__.startswith("torch")


def to_float64(x) -> np.ndarray:
    if is_torch_tensor(x):
        return x.detach().to(_torch().float64).cpu().numpy()
    return np.asarray(x, dtype=np.float64)


class KernelCall:
    def __init__(self, forward, backward=None, *, layout="BHSD", use_torch=False, returns_lse=True):
        if layout not in ("BHSD", "BSHD"):
            raise ValueError(f"layout must be 'BHSD' or 'BSHD'; got {layout!r}")
        self.forward_fn, self.backward_fn = forward, backward
        self.layout, self.use_torch, self.returns_lse = layout, use_torch, returns_lse
        self.autograd = backward is None and use_torch

    @property
    def has_backward(self) -> bool:
        return self.backward_fn is not None or self.autograd

    # --- conversions -------------------------------------------------------------------------
    def _to_layout(self, x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(x.transpose(0, 2, 1, 3) if self.layout == "BSHD" else x)

    def _from_layout(self, x: np.ndarray) -> np.ndarray:
        return x.transpose(0, 2, 1, 3) if self.layout == "BSHD" and x.ndim == 4 else x

    def array(self, x: np.ndarray, dtype: str):
        """A float64 (B, H, N, D) array as the kernel takes it: its layout, dtype and array type."""
        x = self._to_layout(x)
        if self.use_torch:
            torch = _torch()
            return torch.from_numpy(x).to(getattr(torch, dtype))
        return x.astype(dtype)

    def strided_array(self, x: np.ndarray, dtype: str):
        """The same values as a non-contiguous view (every other element of a wider buffer)."""
        x = self._to_layout(x)
        wide = np.zeros(x.shape[:-1] + (2 * x.shape[-1],))
        wide[..., ::2] = x
        if self.use_torch:
            torch = _torch()
            return torch.from_numpy(wide).to(getattr(torch, dtype))[..., ::2]
        return wide.astype(dtype)[..., ::2]

    def small(self, x, dtype: str):
        """lse or the mask: no layout change."""
        if x is None:
            return None
        if self.use_torch:
            torch = _torch()
            tensor = torch.from_numpy(np.ascontiguousarray(x))
            return tensor if x.dtype == bool else tensor.to(getattr(torch, dtype))
        return np.ascontiguousarray(x if x.dtype == bool else x.astype(dtype))

    def canonical(self, x) -> np.ndarray:
        return self._from_layout(to_float64(x))

    # --- calls -------------------------------------------------------------------------------
    def forward(self, q, k, v, *, causal, scale, key_padding_mask):
        """Returns (raw out, raw lse or None) as the kernel gave them."""
        result = self.forward_fn(q, k, v, causal=causal, scale=scale, key_padding_mask=key_padding_mask)
        if self.returns_lse:
            if not isinstance(result, (tuple, list)) or len(result) != 2:
                raise TypeError(f"forward was declared to return (out, lse); got {type(result).__name__}")
            return result[0], result[1]
        if isinstance(result, (tuple, list)):
            return result[0], None
        return result, None

    def backward(self, dout, q, k, v, out, lse, *, causal, scale, key_padding_mask):
        """Returns raw (dq, dk, dv)."""
        if not self.autograd:
            return tuple(self.backward_fn(dout, q, k, v, out, lse, causal=causal, scale=scale,
                                          key_padding_mask=key_padding_mask))
        torch = _torch()
        leaves = [x.detach().clone().requires_grad_(True) for x in (q, k, v)]
        with torch.enable_grad():
            result = self.forward_fn(*leaves, causal=causal, scale=scale, key_padding_mask=key_padding_mask)
            out_t = result[0] if isinstance(result, (tuple, list)) else result
            grads = torch.autograd.grad(out_t, leaves, grad_outputs=dout, allow_unused=True)
        return tuple(torch.zeros_like(x) if g is None else g for g, x in zip(grads, leaves))
