"""One LSTM layer over a whole sequence, forward and backpropagation through time by hand.

Gate order i, f, g, o as PyTorch; weights w_ih (4H, I), w_hh (4H, H), biases (4H,).
Forward, t = 0..T-1 (the input projection for all steps is one matrix product):
    z_t = x_t W_ih^T + b_ih + b_hh + h_{t-1} W_hh^T                (B, 4H)
    i, f, o = sigmoid(z_i, z_f, z_o);  g = tanh(z_g)
    c_t = f * c_{t-1} + i * g;          h_t = o * tanh(c_t)
Backward, t = T-1..0, carrying dh (from step t+1) and dc:
    dh_t = dout_t + dh;  dc += dh_t * o * (1 - tanh(c_t)^2)
    dz_o = dh_t * tanh(c_t) * o(1-o);   dz_i = dc * g * i(1-i)
    dz_f = dc * c_{t-1} * f(1-f);       dz_g = dc * i * (1-g^2)
    dh = dz_t W_hh;  dc = dc * f
then dW_ih = sum_t dz_t^T x_t,  dW_hh = sum_t dz_t^T h_{t-1},  db = sum_t dz_t,  dx_t = dz_t W_ih.
"""
from __future__ import annotations

import numpy as np

from ..autograd.function import Function
from ..errors import ShapeError


def _sigmoid(x):
    return 0.5 * (np.tanh(0.5 * x) + 1.0)          # = 1 / (1 + exp(-x)), stable for any x


class LSTMFn(Function):
    name = "lstm"
    formula = "BPTT: dz = [dc g i(1-i), dc c_prev f(1-f), dc i (1-g^2), dh tanh(c) o(1-o)]; dh_prev = dz W_hh; dc_prev = dc f"

    @staticmethod
    def forward(ctx, x, h0, c0, w_ih, w_hh, b_ih, b_hh):
        # x (B, T, I); h0, c0 (B, H) -> out (B, T, H), h_n (B, H), c_n (B, H)
        batch, steps, _ = x.shape
        hidden = w_hh.shape[1]
        xz = (x.reshape(batch * steps, -1) @ w_ih.T + (b_ih + b_hh)).reshape(batch, steps, 4 * hidden)
        gates = np.empty((batch, steps, 4 * hidden), dtype=x.dtype)      # activated i, f, g, o
        cells = np.empty((batch, steps + 1, hidden), dtype=x.dtype)       # c_{-1} .. c_{T-1}
        hiddens = np.empty((batch, steps + 1, hidden), dtype=x.dtype)     # h_{-1} .. h_{T-1}
        cells[:, 0], hiddens[:, 0] = c0, h0
        w_hh_t = np.ascontiguousarray(w_hh.T)
        H = hidden
        for t in range(steps):
            z = xz[:, t] + hiddens[:, t] @ w_hh_t                          # (B, 4H)
            a = gates[:, t]
            a[:, :2 * H] = _sigmoid(z[:, :2 * H])                          # i, f
            a[:, 2 * H:3 * H] = np.tanh(z[:, 2 * H:3 * H])                 # g
            a[:, 3 * H:] = _sigmoid(z[:, 3 * H:])                          # o
            cells[:, t + 1] = a[:, H:2 * H] * cells[:, t] + a[:, :H] * a[:, 2 * H:3 * H]
            hiddens[:, t + 1] = a[:, 3 * H:] * np.tanh(cells[:, t + 1])
        ctx.save_for_backward(x, w_ih, w_hh, gates, cells, hiddens)
        return hiddens[:, 1:].copy(), hiddens[:, -1].copy(), cells[:, -1].copy()

    @staticmethod
    def backward(ctx, dout, dh_n, dc_n):
        x, w_ih, w_hh, gates, cells, hiddens = ctx.saved
        batch, steps, _ = x.shape
        H = w_hh.shape[1]
        dz = np.empty_like(gates)                                            # (B, T, 4H)
        dh, dc = dh_n.copy(), dc_n.copy()
        for t in range(steps - 1, -1, -1):
            i, f, g, o = (gates[:, t, k * H:(k + 1) * H] for k in range(4))
            tanh_c = np.tanh(cells[:, t + 1])
            dh_t = dout[:, t] + dh
            dc = dc + dh_t * o * (1.0 - tanh_c * tanh_c)
            dz[:, t, :H] = dc * g * i * (1.0 - i)
            dz[:, t, H:2 * H] = dc * cells[:, t] * f * (1.0 - f)
            dz[:, t, 2 * H:3 * H] = dc * i * (1.0 - g * g)
            dz[:, t, 3 * H:] = dh_t * tanh_c * o * (1.0 - o)
            dh = dz[:, t] @ w_hh                                              # (B, H)
            dc = dc * f
        dz2 = dz.reshape(batch * steps, 4 * H)
        need = ctx.needs_input_grad
        dx = (dz2 @ w_ih).reshape(x.shape) if need[0] else None
        dw_ih = dz2.T @ x.reshape(batch * steps, -1) if need[3] else None
        dw_hh = dz2.T @ hiddens[:, :-1].reshape(batch * steps, H) if need[4] else None
        db = dz2.sum(axis=0)
        return dx, dh, dc, dw_ih, dw_hh, db, db


def lstm(x, h0, c0, w_ih, w_hh, b_ih, b_hh):
    """One layer; returns (out (B, T, H), h_n (B, H), c_n (B, H))."""
    if x.ndim != 3 or x.shape[-1] != w_ih.shape[1]:
        raise ShapeError(f"lstm: x must be (B, T, {w_ih.shape[1]}); got {x.shape}")
    hidden = w_hh.shape[1]
    for name, s in (("h0", h0), ("c0", c0)):
        if s.shape != (x.shape[0], hidden):
            raise ShapeError(f"lstm: {name} must be (B, H) = {(x.shape[0], hidden)}; got {s.shape}")
    return LSTMFn.apply(x, h0, c0, w_ih, w_hh, b_ih, b_hh)
