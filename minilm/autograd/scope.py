"""The module path of the code that is running (`blocks.2.attn`), for traces and anomaly reports.

`nn.Module.__call__` pushes its path here; every graph node records the path it was made under.
"""
from __future__ import annotations

import contextlib
import threading

_state = threading.local()


def current_module_path() -> str:
    stack = getattr(_state, "stack", None)
    return stack[-1] if stack else ""


@contextlib.contextmanager
def module_scope(name: str):
    """Enter a child scope `name` under the current path (`blocks` then `2` gives `blocks.2`)."""
    stack = getattr(_state, "stack", None)
    if stack is None:
        stack = _state.stack = []
    parent = stack[-1] if stack else ""
    stack.append(f"{parent}.{name}" if parent and name else (name or parent))
    try:
        yield
    finally:
        stack.pop()


@contextlib.contextmanager
def absolute_module_scope(path: str):
    """Enter the scope of a module whose full dotted path (`blocks.2.attn`) is already known."""
    stack = getattr(_state, "stack", None)
    if stack is None:
        stack = _state.stack = []
    stack.append(path)
    try:
        yield
    finally:
        stack.pop()
