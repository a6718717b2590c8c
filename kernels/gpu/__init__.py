"""Triton GPU kernels: matmul and FlashAttention-2 forward/backward (backend="triton").

    attention_forward(q, k, v, causal=False, key_padding_mask=None, scale=None) -> (out, lse)
    attention_backward(dout, q, k, v, out, lse, causal=..., key_padding_mask=..., scale=...)
    matmul(a, b)
    is_usable()  True when a CUDA GPU is visible, or TRITON_INTERPRET=1 was set before import

NumPy arrays or torch tensors in, the same kind out (see bridge.py). Needs the `gpu` extra
(triton and torch); importing this package without them raises ImportError saying so.
Set TRITON_INTERPRET=1 before the first import to run the kernels on the CPU through Triton's
interpreter (slow; that is how CI tests them). See README.md in this folder.
"""
try:
    import torch  # noqa: F401  (Triton's launcher needs torch tensors)
    import triton  # noqa: F401
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        f"kernels.gpu needs triton and torch ({error}); install the GPU extra: "
        "pip install 'minilm[gpu]'") from error

from .bridge import attention_backward, attention_forward, cuda_available, interpreter_mode, is_usable, matmul

__all__ = ["attention_forward", "attention_backward", "matmul", "is_usable", "interpreter_mode",
           "cuda_available"]
