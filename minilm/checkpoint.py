"""Checkpoints: safetensors (no pickle), written atomically, config stored beside the tensors.

A failed or killed save loses nothing: bytes go to a temporary file in the same folder, are
flushed to disk, and only then renamed over the old file (rename is atomic on POSIX).
Loading checks names, shapes and dtypes against what the model expects (Module.load_state_dict).
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from .errors import MinilmError


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_json(path: Path, obj) -> None:
    atomic_write_bytes(Path(path), (json.dumps(obj, indent=2) + "\n").encode("utf-8"))


def _safetensors():
    try:
        import safetensors.numpy as st_numpy
        from safetensors import safe_open
    except ImportError:
        raise MinilmError("checkpoints need safetensors: pip install 'minilm[train]'") from None
    return st_numpy, safe_open


def save_tensors(path, tensors: dict[str, np.ndarray], metadata: dict | None = None) -> int:
    """Write tensors (+ JSON-able metadata under the key 'minilm') atomically; return the size in bytes."""
    st_numpy, _ = _safetensors()
    arrays = {name: np.ascontiguousarray(value) for name, value in tensors.items()}
    meta = {"minilm": json.dumps(metadata or {})}
    data = st_numpy.save(arrays, metadata=meta)
    atomic_write_bytes(Path(path), data)
    return len(data)


def load_tensors(path) -> tuple[dict[str, np.ndarray], dict]:
    """Read tensors and the metadata stored with them."""
    _, safe_open = _safetensors()
    path = Path(path)
    if not path.is_file():
        raise MinilmError(f"checkpoint not found: {path}")
    try:
        with safe_open(str(path), framework="np") as f:
            metadata = json.loads((f.metadata() or {}).get("minilm", "{}"))
            tensors = {name: f.get_tensor(name) for name in f.keys()}
    except Exception as error:  # safetensors raises its own error types for corrupt files
        raise MinilmError(f"cannot read checkpoint {path}: {error}") from None
    return tensors, metadata
