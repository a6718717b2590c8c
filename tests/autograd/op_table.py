"""One table of every primitive op: how to call it in minilm and in torch, and its input domain.

Each test file turns the table into tests (gradcheck, vs PyTorch), MyGrad-style: write the op's
description once, reuse it for every property.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

import minilm


@dataclass
class OpSpec:
    name: str
    ours: callable                     # (*tensors) -> Tensor
    theirs: callable                   # (*torch tensors) -> torch tensor
    arity: int = 1
    low: float = -2.0
    high: float = 2.0
    away_from_zero: float = 0.0        # keep |x| above this (kinks, poles)
    broadcast: bool = False            # binary op with NumPy broadcasting
    min_dims: int = 0
    kwargs: dict = field(default_factory=dict)


def _torch():
    import torch
    return torch


def _gelu_torch(approximate):
    return lambda a: _torch().nn.functional.gelu(a, approximate=approximate)


def _gather_ours(a):
    index = np.zeros(a.shape, dtype=np.int64)
    index.reshape(-1)[::2] = a.shape[-1] - 1
    return a.gather(-1, index)


def _gather_theirs(a):
    torch = _torch()
    index = np.zeros(tuple(a.shape), dtype=np.int64)
    index.reshape(-1)[::2] = a.shape[-1] - 1
    return torch.gather(a, -1, torch.from_numpy(index))


def _repeat_index(n):
    return np.array([0, n - 1, 0, n // 2])                  # index 0 twice: scatter-add


OPS = [
    OpSpec("add", lambda a, b: a + b, lambda a, b: a + b, arity=2, broadcast=True),
    OpSpec("sub", lambda a, b: a - b, lambda a, b: a - b, arity=2, broadcast=True),
    OpSpec("mul", lambda a, b: a * b, lambda a, b: a * b, arity=2, broadcast=True),
    OpSpec("div", lambda a, b: a / b, lambda a, b: a / b, arity=2, broadcast=True, away_from_zero=0.5),
    OpSpec("pow", lambda a, b: a ** b, lambda a, b: a ** b, arity=2, broadcast=True, low=0.5, high=2.0),
    OpSpec("pow_scalar", lambda a: a ** 3, lambda a: a ** 3),
    OpSpec("rpow_scalar", lambda a: 2.0 ** a, lambda a: 2.0 ** a),
    OpSpec("rsub_scalar", lambda a: 1.5 - a, lambda a: 1.5 - a),
    OpSpec("rdiv_scalar", lambda a: 1.5 / a, lambda a: 1.5 / a, away_from_zero=0.5),
    OpSpec("maximum", minilm.maximum, lambda a, b: _torch().maximum(a, b), arity=2, broadcast=True),
    OpSpec("neg", lambda a: -a, lambda a: -a),
    OpSpec("exp", lambda a: a.exp(), lambda a: a.exp()),
    OpSpec("log", lambda a: a.log(), lambda a: a.log(), low=0.2, high=3.0),
    OpSpec("sqrt", lambda a: a.sqrt(), lambda a: a.sqrt(), low=0.2, high=3.0),
    OpSpec("tanh", lambda a: a.tanh(), lambda a: a.tanh()),
    OpSpec("sigmoid", lambda a: a.sigmoid(), lambda a: a.sigmoid(), low=-6, high=6),
    OpSpec("relu", lambda a: a.relu(), lambda a: a.relu(), away_from_zero=0.05),
    OpSpec("gelu", lambda a: a.gelu(), _gelu_torch("none"), low=-4, high=4),
    OpSpec("gelu_tanh", lambda a: a.gelu("tanh"), _gelu_torch("tanh"), low=-4, high=4),
    OpSpec("abs", lambda a: a.abs(), lambda a: a.abs(), away_from_zero=0.05),
    OpSpec("clip", lambda a: a.clip(-0.5, 0.7), lambda a: a.clamp(-0.5, 0.7), low=-2, high=2),
    OpSpec("sum_all", lambda a: a.sum(), lambda a: a.sum()),
    OpSpec("sum_axis", lambda a: a.sum(axis=-1), lambda a: a.sum(dim=-1), min_dims=1),
    OpSpec("sum_keepdims", lambda a: a.sum(axis=0, keepdims=True), lambda a: a.sum(dim=0, keepdim=True), min_dims=1),
    OpSpec("mean_axis", lambda a: a.mean(axis=-1), lambda a: a.mean(dim=-1), min_dims=1),
    OpSpec("mean_all", lambda a: a.mean(), lambda a: a.mean()),
    OpSpec("max_axis", lambda a: a.max(axis=-1), lambda a: a.amax(dim=-1), min_dims=1),
    OpSpec("max_keepdims", lambda a: a.max(axis=0, keepdims=True), lambda a: a.amax(dim=0, keepdim=True), min_dims=1),
    OpSpec("var_axis", lambda a: a.var(axis=-1), lambda a: a.var(dim=-1, unbiased=False), min_dims=1),
    OpSpec("var_ddof1", lambda a: minilm.concatenate([a, a * a], axis=0).var(axis=0, ddof=1),
           lambda a: _torch().cat([a, a * a], dim=0).var(dim=0, unbiased=True), min_dims=1),
    OpSpec("reshape", lambda a: a.reshape(-1), lambda a: a.reshape(-1)),
    OpSpec("transpose", lambda a: a.T, lambda a: a.permute(tuple(reversed(range(a.ndim))))),
    OpSpec("swapaxes", lambda a: a.swapaxes(0, -1), lambda a: a.transpose(0, -1), min_dims=1),
    OpSpec("expand", lambda a: a.expand((3,) + a.shape), lambda a: a.expand((3,) + tuple(a.shape))),
    OpSpec("getitem_slice", lambda a: a[..., ::2], lambda a: a[..., ::2], min_dims=1),
    OpSpec("getitem_repeat", lambda a: a[_repeat_index(a.shape[0])],
           lambda a: a[_torch().from_numpy(_repeat_index(a.shape[0]))], min_dims=1),
    OpSpec("gather", _gather_ours, _gather_theirs, min_dims=1),
    OpSpec("concatenate", lambda a, b: minilm.concatenate([a, b, a], axis=0),
           lambda a, b: _torch().cat([a, b, a], dim=0), arity=2, min_dims=1),
    OpSpec("stack", lambda a, b: minilm.stack([a, b], axis=-1), lambda a, b: _torch().stack([a, b], dim=-1), arity=2),
    OpSpec("where", lambda a, b: minilm.where(a.data > 0, a, b), lambda a, b: _torch().where(a > 0, a, b),
           arity=2, broadcast=True, away_from_zero=0.05),
    OpSpec("masked_fill", lambda a: a.masked_fill(a.data > 0.5, -1.0), lambda a: a.masked_fill(a > 0.5, -1.0),
           away_from_zero=0.0),
    OpSpec("matmul", lambda a, b: a @ b, lambda a, b: a @ b, arity=2),
]
