"""Batches of random windows from a token stream, for language-model training.

get_batch returns x (B, T) and y (B, T) with y = x shifted by one: y[b, t] = ids[start_b + t + 1].
"""
from __future__ import annotations

import numpy as np

from ..errors import MinilmError


def check_windows(ids: np.ndarray, context: int, name: str = "data") -> None:
    if len(ids) < context + 2:
        raise MinilmError(f"{name}: {len(ids)} tokens is too few for a context of {context} "
                          f"(need at least {context + 2}); use a smaller --context or more data")


def get_batch(ids: np.ndarray, batch_size: int, context: int, rng: np.random.Generator):
    """Random windows: x (B, T) int64, y (B, T) int64 (next tokens)."""
    check_windows(ids, context)
    starts = rng.integers(0, len(ids) - context - 1, size=batch_size)
    offsets = np.arange(context)
    x = ids[starts[:, None] + offsets]                       # (B, T)
    y = ids[starts[:, None] + offsets + 1]                   # (B, T)
    return x, y


def eval_windows(ids: np.ndarray, context: int, max_windows: int | None = None):
    """Non-overlapping windows covering the stream in order (deterministic evaluation)."""
    check_windows(ids, context)
    count = (len(ids) - 1) // context
    if max_windows is not None:
        count = min(count, max_windows)
    starts = np.arange(count) * context
    offsets = np.arange(context)
    return ids[starts[:, None] + offsets], ids[starts[:, None] + offsets + 1]
