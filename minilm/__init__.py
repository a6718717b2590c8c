"""minilm: see and verify how a language model learns.

A NumPy reverse-mode autograd engine with every op's backward written by hand beside its forward,
gradient checking as library API, and (in later modules) layers, models and training built on it.
"""
from ._malloc import tune_allocator

tune_allocator()

from .autograd import Function, Tensor, enable_grad, is_grad_enabled, no_grad, tensor, unbroadcast
from .autograd.ops import (abs, add, clip, concatenate, div, exp, expand, gather, gelu, getitem, log,  # noqa: A004
                           masked_fill, matmul, max, maximum, mean, mul, neg, pow, relu, reshape, sigmoid,
                           sqrt, stack, sub, sum, swapaxes, tanh, transpose, var, where)
from .autograd.anomaly import detect_anomaly
from .autograd.gradcheck import GradcheckReport, gradcheck
from .autograd.trace import Trace, trace
from .errors import DTypeError, GradError, MinilmError, NonFiniteError, ShapeError

__version__ = "0.1.0"

# sentence embeddings from a pre-trained BERT: numpy-only at import, the model loads at first call
# (the function shadows its module's name here; `from minilm.embed import load, SentenceEncoder` reaches the rest)
from .embed import embed  # noqa: E402
