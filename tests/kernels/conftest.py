"""Kernel tests: run the Triton kernels through Triton's interpreter when no CUDA GPU is visible.

Triton fixes compiled-vs-interpreted when it decorates a kernel (at `import kernels.gpu`), from
TRITON_INTERPRET. This conftest is loaded before any test module in tests/kernels is imported,
so it sets TRITON_INTERPRET=1 here, unless the variable is already set (TRITON_INTERPRET=0 on a
GPU machine forces compiled kernels; =1 forces the interpreter even with a GPU). Only Triton
reads this variable; the other kernel tests in this folder are unaffected.
"""
import os

if "TRITON_INTERPRET" not in os.environ:
    try:
        import torch
    except ImportError:          # no torch: the Triton tests skip themselves; leave the env alone
        torch = None
    if torch is not None and not torch.cuda.is_available():
        os.environ["TRITON_INTERPRET"] = "1"
