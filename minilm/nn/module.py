"""Module and Parameter, as in PyTorch: modules hold parameters and sub-modules by attribute name.

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(4, 8)          # registered as sub-module "fc1"
        def forward(self, x):
            return self.fc1(x).relu()

Calling a module runs `forward` inside its module scope (its dotted path from the root, such as
`blocks.2.attn`), which every graph node records: traces and anomaly reports name the layer.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from ..autograd.scope import absolute_module_scope
from ..autograd.tensor import Tensor
from ..errors import DTypeError, MinilmError, ShapeError


class Parameter(Tensor):
    """A trainable tensor: requires_grad=True, float32 unless given float64."""

    __slots__ = ()

    def __init__(self, data, requires_grad: bool = True):
        data = np.asarray(getattr(data, "data", data))
        if data.dtype.kind != "f":
            raise DTypeError(f"Parameter: needs floating-point data; got dtype {data.dtype}")
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self):
        return f"Parameter(shape={self.shape}, dtype={self.dtype.name}, requires_grad={self.requires_grad})"


class Module:
    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_hooks", [])
        object.__setattr__(self, "_backward_hooks", [])
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_path", None)

    # ----- registration -----------------------------------------------------------------
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise MinilmError(f"{type(self).__name__}: call super().__init__() before assigning attributes")
        # replacing a registered entry keeps its place (ModuleList/Sequential order, state_dict order)
        if isinstance(value, Parameter):
            self._modules.pop(name, None)
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._parameters.pop(name, None)
            self._modules[name] = value
            if self._path is not None:                 # paths known already: give the new child its own
                value._assign_paths(f"{self._path}.{name}" if self._path else name)
        else:
            self._parameters.pop(name, None)
            self._modules.pop(name, None)
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        object.__delattr__(self, name)

    # ----- traversal ----------------------------------------------------------------------
    def named_modules(self, prefix: str = ""):
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def children(self):
        return iter(self._modules.values())

    def named_parameters(self, prefix: str = ""):
        seen = set()
        for path, module in self.named_modules(prefix):
            for name, p in module._parameters.items():
                if id(p) in seen:
                    continue                                   # a shared (tied) parameter once
                seen.add(id(p))
                yield (f"{path}.{name}" if path else name), p

    def parameters(self):
        for _, p in self.named_parameters():
            yield p

    def num_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.size for p in self.parameters() if p.requires_grad or not trainable_only)

    # ----- calling --------------------------------------------------------------------------
    def forward(self, *args, **kwargs):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} has no forward")

    def _assign_paths(self, prefix: str = ""):
        """Cache every sub-module's dotted path from this module (done once, at the first call)."""
        for path, module in self.named_modules(prefix):
            object.__setattr__(module, "_path", path)

    def __call__(self, *args, **kwargs):
        if self._path is None:
            self._assign_paths()
        with absolute_module_scope(self._path):
            out = self.forward(*args, **kwargs)
        for hook in self._forward_hooks:
            changed = hook(self, args, out)
            if changed is not None:
                out = changed
        if self._backward_hooks and isinstance(out, Tensor) and out.requires_grad:
            for hook in self._backward_hooks:
                out.register_hook(lambda g, hook=hook: hook(self, g))
        return out

    def register_forward_hook(self, hook):
        """hook(module, inputs, output) -> new output or None, after every forward."""
        self._forward_hooks.append(hook)
        return _Handle(self._forward_hooks, hook)

    def register_backward_hook(self, hook):
        """hook(module, grad_output) -> new grad or None, when the gradient of the output arrives."""
        self._backward_hooks.append(hook)
        return _Handle(self._backward_hooks, hook)

    # ----- modes and dtypes -----------------------------------------------------------------
    def train(self, mode: bool = True):
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self):
        for p in self.parameters():
            p.grad = None

    def requires_grad_(self, requires_grad: bool = True):
        for p in self.parameters():
            p.requires_grad = requires_grad
        return self

    def to(self, dtype):
        """Cast every parameter (and buffer arrays named in `_buffers`) to float32 or float64."""
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise DTypeError(f"Module.to: dtype must be float32 or float64; got {dtype}")
        for p in self.parameters():
            p.data = p.data.astype(dtype)
            p.grad = None if p.grad is None else p.grad.astype(dtype)
        for m in self.modules():
            for name in getattr(m, "_buffers", ()):
                value = getattr(m, name)
                if isinstance(value, np.ndarray) and value.dtype.kind == "f":
                    object.__setattr__(m, name, value.astype(dtype))
        return self

    # ----- state ------------------------------------------------------------------------------
    def state_dict(self) -> "OrderedDict[str, np.ndarray]":
        return OrderedDict((name, p.data.copy()) for name, p in self.named_parameters())

    def load_state_dict(self, state: dict, strict: bool = True):
        """Copy arrays into the parameters; names, shapes and dtypes must match (strict: all names)."""
        own = dict(self.named_parameters())
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        mismatched = [f"{n}: expected {own[n].shape} {own[n].dtype}, got {np.shape(state[n])} "
                      f"{np.asarray(state[n]).dtype}" for n in sorted(set(own) & set(state))
                      if np.shape(state[n]) != own[n].shape or np.asarray(state[n]).dtype != own[n].dtype]
        if mismatched or (strict and (missing or unexpected)):
            parts = []
            if missing:
                parts.append(f"missing: {missing}")
            if unexpected:
                parts.append(f"unexpected: {unexpected}")
            if mismatched:
                parts.append("shape/dtype mismatch: " + "; ".join(mismatched))
            raise ShapeError(f"load_state_dict({type(self).__name__}): " + " | ".join(parts))
        for name, value in state.items():
            if name in own:
                own[name].data[...] = value
        return {"missing": missing, "unexpected": unexpected}

    # ----- random state (dropout masks): saved with checkpoints so a resumed run is exact -----
    def rng_state(self) -> dict:
        return {path: m.rng.bit_generator.state for path, m in self.named_modules()
                if isinstance(getattr(m, "rng", None), np.random.Generator)}

    def set_rng_state(self, states: dict) -> None:
        for path, m in self.named_modules():
            if path in states and isinstance(getattr(m, "rng", None), np.random.Generator):
                m.rng.bit_generator.state = states[path]

    # ----- display ------------------------------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def __repr__(self):
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for name, p in self._parameters.items():
            flag = "" if p.requires_grad else ", frozen"
            lines.append(f"  ({name}): Parameter{tuple(p.shape)} {p.dtype.name}{flag}")
        for name, child in self._modules.items():
            body = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        if len(lines) == 1:
            return lines[0] + ")"
        return "\n".join(lines) + "\n)"


class _Handle:
    def __init__(self, hooks, hook):
        self._hooks, self._hook = hooks, hook

    def remove(self):
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)


class ModuleList(Module):
    def __init__(self, modules=()):
        super().__init__()
        for i, m in enumerate(modules):
            setattr(self, str(i), m)

    def __getitem__(self, index):
        return list(self._modules.values())[index]

    def __setitem__(self, index, module):
        setattr(self, str(index), module)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module):
        setattr(self, str(len(self)), module)


class Sequential(ModuleList):
    """Modules applied one after another: Sequential(a, b, c)(x) = c(b(a(x))); children named 0, 1, 2."""

    def __init__(self, *modules):
        super().__init__(modules)

    def forward(self, x):
        for module in self:
            x = module(x)
        return x


class ModuleDict(Module):
    """Sub-modules by name (paths such as `heads.mlm`); iterates over names like a dict."""

    def __init__(self, modules: dict | None = None):
        super().__init__()
        for name, module in (modules or {}).items():
            setattr(self, name, module)

    def __getitem__(self, name):
        return self._modules[name]

    def __setitem__(self, name, module):
        setattr(self, name, module)

    def __contains__(self, name):
        return name in self._modules

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def keys(self):
        return self._modules.keys()

    def items(self):
        return self._modules.items()

    def values(self):
        return self._modules.values()
