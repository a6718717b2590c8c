"""LSTM with PyTorch's parameter names and layout: weight_ih_l{k} (4H, I), weight_hh_l{k} (4H, H),
bias_ih_l{k}, bias_hh_l{k}; gate order i, f, g, o; returns (output, (h_n, c_n)) with h_n, c_n
(num_layers, B, H). Each layer runs as one fused Function (backpropagation through time by hand)."""
from __future__ import annotations

import math

import numpy as np

from .. import functional as F
from ..autograd import ops
from ..errors import ShapeError
from .layers import Dropout, _uniform
from .module import Module, Parameter


class LSTM(Module):
    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, batch_first: bool = True,
                 dropout: float = 0.0):
        super().__init__()
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.batch_first = batch_first
        bound = 1.0 / math.sqrt(hidden_size)
        for layer in range(num_layers):
            width = input_size if layer == 0 else hidden_size
            setattr(self, f"weight_ih_l{layer}", Parameter(_uniform(bound, (4 * hidden_size, width))))
            setattr(self, f"weight_hh_l{layer}", Parameter(_uniform(bound, (4 * hidden_size, hidden_size))))
            setattr(self, f"bias_ih_l{layer}", Parameter(_uniform(bound, (4 * hidden_size,))))
            setattr(self, f"bias_hh_l{layer}", Parameter(_uniform(bound, (4 * hidden_size,))))
        self.drop = Dropout(dropout)

    def forward(self, x, state=None):
        """x (B, T, I) (or (T, B, I) if not batch_first); state = (h0, c0), each (num_layers, B, H)."""
        if x.ndim != 3 or x.shape[-1] != self.input_size:
            raise ShapeError(f"LSTM: input must be (B, T, {self.input_size}); got {x.shape}")
        if not self.batch_first:
            x = x.transpose(1, 0, 2)
        batch = x.shape[0]
        zeros = np.zeros((batch, self.hidden_size), dtype=x.dtype)
        if state is not None:
            h0, c0 = state
            for name, s in (("h0", h0), ("c0", c0)):
                if tuple(s.shape) != (self.num_layers, batch, self.hidden_size):
                    raise ShapeError(f"LSTM: {name} must be (num_layers, B, H) = "
                                     f"{(self.num_layers, batch, self.hidden_size)}; got {tuple(s.shape)}")
        h_last, c_last = [], []
        out = x
        for layer in range(self.num_layers):
            h0_l = zeros if state is None else state[0][layer]
            c0_l = zeros if state is None else state[1][layer]
            if layer > 0:
                out = self.drop(out)
            out, h_n, c_n = F.lstm(out, h0_l, c0_l, getattr(self, f"weight_ih_l{layer}"),
                                   getattr(self, f"weight_hh_l{layer}"), getattr(self, f"bias_ih_l{layer}"),
                                   getattr(self, f"bias_hh_l{layer}"))
            h_last.append(h_n)
            c_last.append(c_n)
        if not self.batch_first:
            out = out.transpose(1, 0, 2)
        return out, (ops.stack(h_last, axis=0), ops.stack(c_last, axis=0))

    def extra_repr(self):
        return f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, batch_first={self.batch_first}"


