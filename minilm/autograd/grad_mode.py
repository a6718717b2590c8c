"""Whether operations record a graph: `no_grad()` turns recording off inside its block."""
from __future__ import annotations

import contextlib
import threading

_state = threading.local()


def is_grad_enabled() -> bool:
    return getattr(_state, "enabled", True)


@contextlib.contextmanager
def _set_grad_enabled(enabled: bool):
    previous = is_grad_enabled()
    _state.enabled = enabled
    try:
        yield
    finally:
        _state.enabled = previous


def no_grad():
    """Context manager (and decorator) in which no graph is recorded, as torch.no_grad()."""
    return _set_grad_enabled(False)


def enable_grad():
    return _set_grad_enabled(True)
