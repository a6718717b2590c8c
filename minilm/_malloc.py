"""Keep freed memory for reuse instead of returning it to the OS (glibc only).

Each op of the engine makes fresh arrays of the activations' size. glibc serves blocks over 128 KiB
with mmap and unmaps them on free, so every new array costs page faults on first touch: on a
2-layer 256x256 MLP step that was a third of the time. PyTorch avoids it with a caching allocator;
we raise glibc's mmap and trim thresholds so freed blocks stay in the heap and are reused.
Disable with MINILM_MALLOC_TUNING=0. No effect (and no error) on other C libraries.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 32 << 20          # glibc's maximum on 64-bit
TRIM_THRESHOLD_BYTES = 256 << 20

tuned = False


def tune_allocator() -> bool:
    """Apply the thresholds once; return True when glibc accepted them."""
    global tuned
    if tuned or os.environ.get("MINILM_MALLOC_TUNING", "1") == "0" or not sys.platform.startswith("linux"):
        return tuned
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    tuned = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))
    return tuned
