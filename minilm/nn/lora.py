"""LoRALinear: wraps a Linear; its weight and bias are frozen, only lora_A and lora_B train.

    y = base(x) + (alpha / r) * drop(x) @ lora_A^T @ lora_B^T
lora_A (r, in) is Kaiming-uniform (as in the LoRA paper's reference code), lora_B (out, r) zeros, so
the wrapped layer starts out exactly equal to the base. merge() folds the update into the base
weight (W += s B A) for inference at no extra cost; unmerge() takes it out again.
Several named adapters can live on one layer; `active` picks which one runs (None: the base only).
"""
from __future__ import annotations

import math

import numpy as np

from .. import functional as F
from ..errors import MinilmError, NonFiniteError, ShapeError
from .layers import Linear
from .module import Module, Parameter


class LoRALinear(Module):
    def __init__(self, base: Linear, r: int = 8, alpha: float = 16.0, dropout: float = 0.0, rslora: bool = False,
                 seed: int = 0, adapter: str = "default"):
        super().__init__()
        if not isinstance(base, Linear):
            raise MinilmError(f"LoRALinear: base must be a Linear; got {type(base).__name__}")
        self.base = base
        base.requires_grad_(False)
        self.in_features, self.out_features = base.in_features, base.out_features
        object.__setattr__(self, "adapters", {})          # name -> (r, alpha, dropout, scaling)
        object.__setattr__(self, "active", None)
        object.__setattr__(self, "merged", None)
        self.rng = np.random.default_rng(seed)
        self.add_adapter(adapter, r, alpha, dropout, rslora, seed)

    def add_adapter(self, name: str, r: int, alpha: float, dropout: float = 0.0, rslora: bool = False, seed: int = 0):
        if not 1 <= r <= min(self.in_features, self.out_features):
            raise ShapeError(f"LoRALinear: rank r must be in [1, min(in, out)] = [1, "
                             f"{min(self.in_features, self.out_features)}] for a ({self.out_features}, "
                             f"{self.in_features}) layer; got r={r}")
        if name in self.adapters:
            raise MinilmError(f"LoRALinear: an adapter named {name!r} exists already")
        if self.merged is not None:
            raise MinilmError("LoRALinear: unmerge before adding an adapter")
        rng = np.random.default_rng(seed)
        bound = math.sqrt(6.0 / ((1 + 5.0) * self.in_features))           # kaiming_uniform_(a=sqrt(5))
        dtype = self.base.weight.dtype
        setattr(self, self._a(name), Parameter(rng.uniform(-bound, bound, (r, self.in_features)).astype(dtype)))
        setattr(self, self._b(name), Parameter(np.zeros((self.out_features, r), dtype)))
        scaling = alpha / math.sqrt(r) if rslora else alpha / r
        self.adapters[name] = {"r": r, "alpha": alpha, "dropout": dropout, "rslora": rslora, "scaling": scaling}
        object.__setattr__(self, "active", name)

    @staticmethod
    def _a(name):
        return "lora_A" if name == "default" else f"lora_A_{name}"

    @staticmethod
    def _b(name):
        return "lora_B" if name == "default" else f"lora_B_{name}"

    def lora_pair(self, name=None):
        name = name or self.active
        return getattr(self, self._a(name)), getattr(self, self._b(name))

    def set_adapter(self, name):
        """Activate adapter `name` (None: run the base layer alone). Only the active one trains."""
        if name is not None and name not in self.adapters:
            raise MinilmError(f"LoRALinear: no adapter {name!r}; have {sorted(self.adapters)}")
        if self.merged is not None:
            raise MinilmError("LoRALinear: unmerge before switching adapters")
        object.__setattr__(self, "active", name)
        for other in self.adapters:
            for p in self.lora_pair(other):
                p.requires_grad = other == name

    def delete_adapter(self, name):
        if name not in self.adapters:
            raise MinilmError(f"LoRALinear: no adapter {name!r}; have {sorted(self.adapters)}")
        if self.merged == name:
            raise MinilmError("LoRALinear: unmerge before deleting the merged adapter")
        delattr(self, self._a(name))
        delattr(self, self._b(name))
        del self.adapters[name]
        if self.active == name:
            object.__setattr__(self, "active", None)

    def delta_weight(self, name=None) -> np.ndarray:
        a, b = self.lora_pair(name)
        return self.adapters[name or self.active]["scaling"] * (b.data @ a.data)      # (out, in)

    def merge(self):
        if self.merged is not None or self.active is None:
            return
        a, b = self.lora_pair()
        if not (np.isfinite(a.data).all() and np.isfinite(b.data).all()):
            raise NonFiniteError(f"LoRALinear.merge: adapter {self.active!r} holds NaN/inf; refusing to merge")
        self.base.weight.data += self.delta_weight().astype(self.base.weight.dtype)
        object.__setattr__(self, "merged", self.active)

    def unmerge(self):
        if self.merged is None:
            return
        self.base.weight.data -= self.delta_weight(self.merged).astype(self.base.weight.dtype)
        object.__setattr__(self, "merged", None)

    def forward(self, x):
        if self.active is None or self.merged is not None:
            return self.base(x)
        config = self.adapters[self.active]
        a, b = self.lora_pair()
        return F.lora_linear(x, self.base.weight, self.base.bias, a, b, config["scaling"], config["dropout"],
                             self.rng, self.training)

    def extra_repr(self):
        parts = [f"{n}: r={c['r']}, alpha={c['alpha']}" for n, c in self.adapters.items()]
        return f"{self.in_features} -> {self.out_features}; " + "; ".join(parts) + f"; active={self.active!r}"
