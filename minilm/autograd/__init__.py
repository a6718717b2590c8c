"""The autograd engine: Tensor, Function, primitive ops, un-broadcasting and gradient checking."""
from . import ops
from .broadcast import unbroadcast
from .function import Function
from .grad_mode import enable_grad, is_grad_enabled, no_grad
from .tensor import Tensor, tensor

__all__ = ["Tensor", "tensor", "Function", "ops", "no_grad", "enable_grad", "is_grad_enabled", "unbroadcast"]
