"""The bridge between callers and the Triton kernels: validate, move, launch, move back.

    attention_forward(q, k, v, causal=False, key_padding_mask=None, scale=None) -> (out, lse)
    attention_backward(dout, q, k, v, out, lse, causal=False, key_padding_mask=None, scale=None)
        -> (dq, dk, dv)
    matmul(a, b) -> a @ b

Inputs are NumPy arrays or torch tensors; results come back as the same kind (NumPy in, NumPy
out; torch in, torch out on the input's device). Tensors go to the current CUDA device for a
compiled launch, or stay on the CPU under Triton's interpreter (TRITON_INTERPRET=1).

Validation is shared with every backend (kernels/checks.py): the same shapes, messages and
dtype rules. Dtypes: float16, bfloat16 (torch only: NumPy has none), float32 and float64.
lse is returned in float32 for 16- and 32-bit inputs (as FlashAttention does) and in float64 for
float64 inputs. Precision of fp32 inputs is `input_precision`: "tf32" (the GPU default for
matmul, ~1e-3 relative) or "ieee" (true fp32; the default for attention, where the logits
amplify tf32's rounding). The interpreter computes exactly in the input precision either way.
"""
from __future__ import annotations

import numpy as np

from ..checks import (check_attention_inputs, check_backward_shapes, check_matmul_inputs, check_same_dtype,
                      default_scale, dtype_name)
from ..errors import KernelInputError
# The kernel modules are imported here, before kernels/gpu/__init__.py binds the public names:
# importing the submodule `kernels.gpu.matmul` for the first time later would overwrite the
# function `kernels.gpu.matmul` with the module.
from .attention_bwd import flash_attention_backward
from .attention_fwd import flash_attention_forward
from .matmul import matmul_into
from .tuning import check_mode, cuda_available, interpreter_mode, launch_device

ALLOWED = ("float16", "bfloat16", "float32", "float64")
PRECISIONS = ("tf32", "ieee")


def is_usable() -> bool:
    """True when the kernels can launch here: a CUDA GPU is visible, or the interpreter is on."""
    try:
        check_mode()
    except ImportError:
        return False
    return True


# ---------------------------------------------------------------------------------------------
# conversions: NumPy or torch in, torch on the launch device for the kernels, the same kind out

def _is_torch(x) -> bool:
    return type(x).__module__.startswith("torch")


def _check_dtypes(name: str, **arrays) -> str:
    """One floating dtype among ALLOWED shared by all arrays (the rule lives in kernels/checks.py)."""
    return check_same_dtype(name, ALLOWED, **arrays)


def _check_same_kind(name: str, **arrays) -> bool:
    """All NumPy or all torch; return True for torch."""
    kinds = {arg: _is_torch(x) for arg, x in arrays.items() if x is not None}
    if len(set(kinds.values())) > 1:
        torch_args = [a for a, t in kinds.items() if t]
        raise KernelInputError(f"{name}: mix of NumPy arrays and torch tensors ({', '.join(torch_args)} are "
                               "torch); pass all of one kind")
    return any(kinds.values())


def _to_launch(x, device):
    """NumPy array or torch tensor -> torch tensor on `device` (no copy when already there)."""
    import torch
    if _is_torch(x):
        return x.detach().to(device)
    array = np.asarray(x)
    if interpreter_mode():
        # Triton's interpreter copies each argument's storage keyed by its start address; two
        # NumPy views that start at the same address (q and q[:, :1]) would collide there.
        array = np.array(array, copy=True, order="K")
    elif any(s < 0 for s in array.strides):
        array = np.ascontiguousarray(array)          # torch cannot view negative strides
    return torch.from_numpy(array).to(device)


def _mask_to_launch(mask, device):
    """Boolean (B, Nk) mask -> uint8 on `device` (1 = ignore); Triton has no pointer-to-bool load."""
    import torch
    if mask is None:
        return None
    return _to_launch(mask, device).to(torch.uint8).contiguous()


def _from_launch(t, like_torch: bool, like=None):
    """Back to the caller's kind: torch on the input's device, or a NumPy array."""
    if like_torch:
        return t.to(like.device)
    return t.cpu().numpy()


def _check_finite(name: str, **tensors) -> None:
    """NaN and inf never pass silently (the message of checks.check_finite)."""
    import torch
    for arg, t in tensors.items():
        finite = torch.isfinite(t)
        if not bool(finite.all()):
            bad = int(t.numel() - int(finite.sum()))
            raise KernelInputError(f"{name}: {arg} contains {bad} NaN/inf value(s)")


def _check_precision(name: str, input_precision: str) -> None:
    if input_precision not in PRECISIONS:
        raise KernelInputError(f"{name}: input_precision must be one of {PRECISIONS}; got {input_precision!r}")


# ---------------------------------------------------------------------------------------------
# public API (the reference's signatures, plus input_precision for fp32)

def attention_forward(q, k, v, causal: bool = False, key_padding_mask=None, scale=None,
                      input_precision: str = "ieee"):
    """Flash attention forward. Returns (out (B, H, Nq, D), lse (B, H, Nq), natural log)."""
    name = "triton.attention_forward"
    shape = check_attention_inputs(q, k, v, key_padding_mask, name=name)
    _check_dtypes(name, q=q, k=k, v=v)
    as_torch = _check_same_kind(name, q=q, k=k, v=v, key_padding_mask=key_padding_mask)
    _check_precision(name, input_precision)
    scale = default_scale(shape.head_dim, scale)
    device = launch_device()
    tq, tk, tv = (_to_launch(x, device) for x in (q, k, v))
    _check_finite(name, q=tq, k=tk, v=tv)
    mask = _mask_to_launch(key_padding_mask, device)
    if tq.numel() == 0:
        import torch
        out = torch.zeros_like(tq)
        lse = torch.full(tq.shape[:3], float("-inf"), dtype=torch.float64 if tq.dtype == torch.float64
                         else torch.float32, device=device)
    else:
        out, lse = flash_attention_forward(tq, tk, tv, mask, causal, scale, input_precision)
    return _from_launch(out, as_torch, q), _from_launch(lse, as_torch, q)


def attention_backward(dout, q, k, v, out, lse, causal: bool = False, key_padding_mask=None, scale=None,
                       input_precision: str = "ieee"):
    """Flash attention backward. Returns (dq (B, H, Nq, D), dk, dv (B, Hkv, Nk, D))."""
    import torch

    name = "triton.attention_backward"
    shape = check_attention_inputs(q, k, v, key_padding_mask, name=name)
    _check_dtypes(name, dout=dout, q=q, k=k, v=v, out=out)
    check_backward_shapes(name, q, dout=dout, out=out, lse=lse)
    if dtype_name(lse) not in ALLOWED:
        raise KernelInputError(f"{name}: lse must have dtype in ({', '.join(ALLOWED)}); got {dtype_name(lse)}")
    as_torch = _check_same_kind(name, dout=dout, q=q, k=k, v=v, out=out, lse=lse,
                                key_padding_mask=key_padding_mask)
    _check_precision(name, input_precision)
    scale = default_scale(shape.head_dim, scale)
    device = launch_device()
    tdout, tq, tk, tv, tout, tlse = (_to_launch(x, device) for x in (dout, q, k, v, out, lse))
    _check_finite(name, dout=tdout, q=tq, k=tk, v=tv, out=tout)
    mask = _mask_to_launch(key_padding_mask, device)
    if tq.numel() == 0 or tk.numel() == 0:
        grads = (torch.zeros_like(tq), torch.zeros_like(tk), torch.zeros_like(tv))
    else:
        grads = flash_attention_backward(tdout, tq, tk, tv, tout, tlse, mask, causal, scale, input_precision)
    return tuple(_from_launch(g, as_torch, q) for g in grads)


def matmul(a, b, input_precision: str = "tf32"):
    """a (M, K) @ b (K, N) with fp32 accumulation (fp64 for float64). fp32 inputs use tf32 on a
    GPU unless input_precision="ieee"; the interpreter is exact fp32."""
    import torch

    name = "triton.matmul"
    check_matmul_inputs(a, b, name=name)
    _check_dtypes(name, a=a, b=b)
    as_torch = _check_same_kind(name, a=a, b=b)
    _check_precision(name, input_precision)
    device = launch_device()
    ta, tb = _to_launch(a, device), _to_launch(b, device)
    _check_finite(name, a=ta, b=tb)
    out = torch.empty((ta.shape[0], tb.shape[1]), dtype=ta.dtype, device=device)
    if out.numel():
        if ta.shape[1] == 0:
            out.zero_()
        else:
            matmul_into(ta, tb, out, input_precision)
    return _from_launch(out, as_torch, a)


__all__ = ["attention_forward", "attention_backward", "matmul", "is_usable", "interpreter_mode",
           "cuda_available"]
