"""Function: an op's forward and backward side by side; Node: its record in the graph.

    class Mul(Function):
        formula = "da = g * b ; db = g * a"
        @staticmethod
        def forward(ctx, a, b):            # arrays in, array out
            ctx.save_for_backward(a, b)
            return a * b
        @staticmethod
        def backward(ctx, g):              # g = dL/d(out), same shape as out
            a, b = ctx.saved
            return g * b, g * a            # one gradient per forward input (None: no gradient)

`Mul.apply(x, y)` takes Tensors (or constants), runs forward on their arrays and, when any input
requires grad and grad mode is on, records a Node so `backward` can call `Mul.backward` later.
A backward may return a gradient with the *broadcast* output shape: the engine un-broadcasts it
to the input's shape in one visible step (broadcast.unbroadcast).
"""
from __future__ import annotations

import numpy as np

from .grad_mode import is_grad_enabled
from .scope import current_module_path

# Observers see every recorded op and every backward step (traces, anomaly mode). Empty = no cost.
OBSERVERS: list = []


class Context:
    """Per-call scratch space shared by forward and backward."""

    def __init__(self):
        self.saved = ()
        self.needs_input_grad = ()

    def save_for_backward(self, *arrays):
        self.saved = arrays


class Node:
    """One recorded call of a Function: what backward needs, and where the result flows back to."""

    __slots__ = ("function", "ctx", "parents", "n_outputs", "output_shapes", "output_dtypes",
                 "output_hooks", "retained", "module_path", "__weakref__")

    def __init__(self, function, ctx, parents, outputs):
        self.function = function          # the Function subclass
        self.ctx = ctx
        self.parents = parents            # one entry per forward input: Tensor needing grad, or None
        self.n_outputs = len(outputs)
        self.output_shapes = tuple(o.shape for o in outputs)
        self.output_dtypes = tuple(o.dtype for o in outputs)
        self.output_hooks = None          # {output index: [hook, ...]} for non-leaf tensor hooks
        self.retained = None              # {output index: weakref to Tensor} for retain_grad()
        self.module_path = current_module_path()

    @property
    def name(self) -> str:
        return self.function.op_name()

    def __repr__(self):
        where = f" in {self.module_path}" if self.module_path else ""
        return f"<{self.name}{where} -> {', '.join(map(str, self.output_shapes))}>"


class Function:
    """Base class of every op. Subclasses define `forward`, `backward` and a one-line `formula`."""

    formula = ""

    @classmethod
    def op_name(cls) -> str:
        return getattr(cls, "name", None) or cls.__name__.lower()

    @staticmethod
    def forward(ctx, *args, **kwargs):  # pragma: no cover - abstract
        raise NotImplementedError

    @staticmethod
    def backward(ctx, *grad_outputs):  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs, **kwargs):
        from .tensor import Tensor
        arrays = [x.data if isinstance(x, Tensor) else x for x in inputs]
        needs = tuple(isinstance(x, Tensor) and x.requires_grad for x in inputs)
        ctx = Context()
        ctx.needs_input_grad = needs
        raw = cls.forward(ctx, *arrays, **kwargs)
        record = is_grad_enabled() and any(needs)
        multi = isinstance(raw, tuple)
        outs = raw if multi else (raw,)
        tensors = tuple(Tensor._wrap(np.asarray(o), record and np.asarray(o).dtype.kind == "f") for o in outs)
        node = None
        if record:
            parents = tuple(x if need else None for x, need in zip(inputs, needs))
            node = Node(cls, ctx, parents, [t.data for t in tensors])
            for index, t in enumerate(tensors):
                if t.requires_grad:
                    t._node = node
                    t._index = index
        if OBSERVERS:
            for observer in OBSERVERS:
                observer.on_forward(cls, node, inputs, tensors, kwargs)
        return tensors if multi else tensors[0]
