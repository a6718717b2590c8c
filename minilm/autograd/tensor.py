"""Tensor: a NumPy array that remembers how it was computed, so gradients can flow back.

    x = minilm.tensor([[1., 2.], [3., 4.]], requires_grad=True)    # float32 by default
    y = (x * x).sum()
    y.backward()                 # x.grad == 2 * x.data
"""
from __future__ import annotations

import weakref

import numpy as np

from ..errors import DTypeError, GradError
from .engine import run_backward
from .grad_mode import no_grad

DEFAULT_DTYPE = np.float32


def _to_array(data, dtype=None) -> np.ndarray:
    if isinstance(data, Tensor):
        data = data.data
    if dtype is not None:
        return np.array(data, dtype=dtype)
    array = np.array(data)
    if array.dtype == np.float64 and not (isinstance(data, np.ndarray) or isinstance(data, np.generic)):
        array = array.astype(DEFAULT_DTYPE)              # Python floats -> float32, as torch.tensor
    elif array.dtype.kind == "f" and array.dtype not in (np.float32, np.float64):
        array = array.astype(DEFAULT_DTYPE)              # float16 etc. are computed in float32
    return array


class Tensor:
    """An array (`.data`), its gradient (`.grad`) and the graph node that produced it."""

    __slots__ = ("data", "grad", "requires_grad", "name", "_node", "_index", "_hooks", "__weakref__")
    __array_priority__ = 1000          # ndarray (op) Tensor defers to Tensor's reflected operator

    def __init__(self, data, requires_grad: bool = False, dtype=None, name: str | None = None):
        self.data = _to_array(data, dtype)
        if requires_grad and self.data.dtype.kind != "f":
            raise DTypeError(f"tensor: only floating-point tensors can require grad; got dtype {self.data.dtype}")
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self.name = name
        self._node = None
        self._index = 0
        self._hooks = None

    @classmethod
    def _wrap(cls, array: np.ndarray, requires_grad: bool) -> "Tensor":
        """Fast constructor for op outputs: no copy, no checks."""
        t = cls.__new__(cls)
        t.data, t.grad, t.requires_grad, t.name = array, None, requires_grad, None
        t._node, t._index, t._hooks = None, 0, None
        return t

    # ----- array-like facts -------------------------------------------------------------
    shape = property(lambda self: self.data.shape)
    dtype = property(lambda self: self.data.dtype)
    ndim = property(lambda self: self.data.ndim)
    size = property(lambda self: self.data.size)
    is_leaf = property(lambda self: self._node is None)

    @property
    def grad_fn(self):
        """The graph node that produced this tensor (None for leaves)."""
        return self._node

    def __len__(self):
        return len(self.data)

    def __repr__(self):
        flag = ", requires_grad=True" if self.requires_grad else ""
        body = np.array2string(self.data, precision=4, threshold=20, edgeitems=2)
        return f"tensor({body}, dtype={self.dtype.name}{flag})"

    def numpy(self) -> np.ndarray:
        return self.data

    def item(self):
        if self.data.size != 1:
            raise GradError(f"item: only a tensor with one element can be converted; got shape {self.shape}")
        return self.data.item()

    def detach(self) -> "Tensor":
        """The same data, cut from the graph."""
        return Tensor._wrap(self.data, False)

    def astype(self, dtype) -> "Tensor":
        from .ops import Cast
        return Cast.apply(self, dtype=np.dtype(dtype))

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        if requires_grad and self.data.dtype.kind != "f":
            raise DTypeError(f"requires_grad_: only floating-point tensors can require grad; got {self.dtype}")
        self.requires_grad = requires_grad
        return self

    # ----- gradients --------------------------------------------------------------------
    def zero_grad(self) -> None:
        self.grad = None

    def backward(self, grad=None) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's .grad; `grad` = dL/d(self), needed unless scalar."""
        if not self.requires_grad:
            raise GradError("backward: this tensor does not require grad (no input with requires_grad=True "
                            "was used to compute it, or it was computed under no_grad())")
        if grad is None:
            if self.data.size != 1:
                raise GradError(f"backward: a tensor of shape {self.shape} is not a scalar; pass grad=, "
                                f"an array of shape {self.shape} holding dL/d(this tensor)")
            grad = np.ones_like(self.data)
        else:
            grad = _to_array(grad, self.dtype)
            if grad.shape != self.shape:
                from ..errors import ShapeError
                raise ShapeError(f"backward: grad must have the tensor's shape {self.shape}; got {grad.shape}")
        if self._node is None:                      # a leaf: its gradient is grad itself
            with no_grad():
                if self._hooks:
                    from .engine import _apply_hooks
                    grad = _apply_hooks(self._hooks, grad)
                self.grad = grad.copy() if self.grad is None else self.grad + grad
            return
        run_backward(self, grad)

    def register_hook(self, hook) -> "RemovableHandle":
        """hook(grad) -> new grad or None, called with this tensor's total gradient in each backward."""
        if not self.requires_grad:
            raise GradError("register_hook: cannot register a hook on a tensor that does not require grad")
        if self._node is None:
            if self._hooks is None:
                self._hooks = []
            hooks = self._hooks
        else:
            if self._node.output_hooks is None:
                self._node.output_hooks = {}
            hooks = self._node.output_hooks.setdefault(self._index, [])
        hooks.append(hook)
        return RemovableHandle(hooks, hook)

    def retain_grad(self) -> None:
        """Keep .grad on a non-leaf tensor too (leaves always keep it)."""
        if self._node is not None:
            if self._node.retained is None:
                self._node.retained = {}
            self._node.retained[self._index] = weakref.ref(self)

    # ----- operators (the ops themselves live in ops.py) ------------------------------------
    def __add__(self, other): return _ops.add(self, other)
    def __radd__(self, other): return _ops.add(other, self)
    def __sub__(self, other): return _ops.sub(self, other)
    def __rsub__(self, other): return _ops.sub(other, self)
    def __mul__(self, other): return _ops.mul(self, other)
    def __rmul__(self, other): return _ops.mul(other, self)
    def __truediv__(self, other): return _ops.div(self, other)
    def __rtruediv__(self, other): return _ops.div(other, self)
    def __pow__(self, other): return _ops.pow(self, other)
    def __rpow__(self, other): return _ops.pow(other, self)
    def __matmul__(self, other): return _ops.matmul(self, other)
    def __rmatmul__(self, other): return _ops.matmul(other, self)
    def __neg__(self): return _ops.neg(self)
    def __getitem__(self, index): return _ops.getitem(self, index)

    # comparisons give constant boolean tensors (no gradient flows through a comparison)
    def __lt__(self, other): return Tensor._wrap(self.data < _ops.raw(other), False)
    def __le__(self, other): return Tensor._wrap(self.data <= _ops.raw(other), False)
    def __gt__(self, other): return Tensor._wrap(self.data > _ops.raw(other), False)
    def __ge__(self, other): return Tensor._wrap(self.data >= _ops.raw(other), False)
    __hash__ = object.__hash__

    def sum(self, axis=None, keepdims=False): return _ops.sum(self, axis, keepdims)
    def mean(self, axis=None, keepdims=False): return _ops.mean(self, axis, keepdims)
    def max(self, axis=None, keepdims=False): return _ops.max(self, axis, keepdims)
    def var(self, axis=None, keepdims=False, ddof=0): return _ops.var(self, axis, keepdims, ddof)
    def exp(self): return _ops.exp(self)
    def log(self): return _ops.log(self)
    def sqrt(self): return _ops.sqrt(self)
    def tanh(self): return _ops.tanh(self)
    def sigmoid(self): return _ops.sigmoid(self)
    def relu(self): return _ops.relu(self)
    def gelu(self, approximate="none"): return _ops.gelu(self, approximate)
    def abs(self): return _ops.abs(self)
    def clip(self, min=None, max=None): return _ops.clip(self, min, max)
    def reshape(self, *shape): return _ops.reshape(self, *shape)
    def transpose(self, *axes): return _ops.transpose(self, *axes)
    def swapaxes(self, axis1, axis2): return _ops.swapaxes(self, axis1, axis2)
    def expand(self, *shape): return _ops.expand(self, *shape)
    def gather(self, axis, index): return _ops.gather(self, axis, index)
    def masked_fill(self, mask, value): return _ops.masked_fill(self, mask, value)
    T = property(lambda self: _ops.transpose(self))


class RemovableHandle:
    def __init__(self, hooks: list, hook):
        self._hooks, self._hook = hooks, hook

    def remove(self) -> None:
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)


def tensor(data, requires_grad: bool = False, dtype=None, name: str | None = None) -> Tensor:
    """Make a tensor: float32 by default for Python numbers, a given ndarray's dtype kept (float64 too)."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype, name=name)


from . import ops as _ops  # noqa: E402  (ops need Tensor defined first)
