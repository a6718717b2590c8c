"""cross_entropy(logits (N, C), targets (N,), ignore_index=-100, label_smoothing=0.0), fused.

With p = softmax(logits), q = (1 - eps) * onehot(target) + eps / C (label smoothing eps):
    loss_i = -sum_c q_ic * log p_ic,   loss = mean over rows whose target != ignore_index
    dlogits_i = g * (p_i - q_i) / n_valid   (ignored rows: 0)
Stable for logits of any magnitude: log p = x - max - log(sum exp(x - max)).
"""
from __future__ import annotations

import numpy as np

from ..autograd.function import Function
from ..errors import DTypeError, ShapeError


class CrossEntropyFn(Function):
    name = "cross_entropy"
    formula = "dlogits = g * (softmax(logits) - q) / n_valid,  q = (1-eps) onehot(target) + eps/C"

    @staticmethod
    def forward(ctx, logits, targets=None, ignore_index=-100, label_smoothing=0.0):
        # logits (N, C), targets (N,) int
        if logits.ndim != 2:
            raise ShapeError(f"cross_entropy: logits must be (N, C); got {logits.shape}")
        targets = np.asarray(targets)
        if targets.dtype.kind not in "iu":
            raise DTypeError(f"cross_entropy: targets must be integer class ids; got dtype {targets.dtype}")
        if targets.shape != logits.shape[:1]:
            raise ShapeError(f"cross_entropy: targets must be (N,) = ({logits.shape[0]},); got {targets.shape}")
        n, classes = logits.shape
        valid = targets != ignore_index
        bad = valid & ((targets < 0) | (targets >= classes))
        if bad.any():
            raise ShapeError(f"cross_entropy: targets must lie in [0, {classes}) or equal ignore_index="
                             f"{ignore_index}; got {targets[bad][:5].tolist()}")
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1]; got {label_smoothing}")
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))        # (N, C)
        safe_targets = np.where(valid, targets, 0)
        picked = log_probs[np.arange(n), safe_targets]                                    # (N,)
        per_row = -(1.0 - label_smoothing) * picked
        if label_smoothing:
            per_row = per_row - label_smoothing * log_probs.mean(axis=1)
        n_valid = int(valid.sum())
        ctx.save_for_backward(log_probs, safe_targets, valid)
        ctx.label_smoothing, ctx.n_valid = label_smoothing, n_valid
        if n_valid == 0:
            return np.array(np.nan, dtype=logits.dtype)        # as torch: the mean over no element is NaN
        return np.array(np.sum(per_row[valid]) / n_valid, dtype=logits.dtype)

    @staticmethod
    def backward(ctx, g):
        log_probs, targets, valid = ctx.saved
        n, classes = log_probs.shape
        if ctx.n_valid == 0:
            return np.zeros_like(log_probs)
        grad = np.exp(log_probs)                                                         # p (N, C)
        eps = ctx.label_smoothing
        grad[np.arange(n), targets] -= 1.0 - eps
        if eps:
            grad -= eps / classes
        grad *= (g / ctx.n_valid) * valid[:, None]
        return grad.astype(log_probs.dtype, copy=False)


def cross_entropy(logits, targets, ignore_index: int = -100, label_smoothing: float = 0.0):
    return CrossEntropyFn.apply(logits, targets=np.asarray(getattr(targets, "data", targets)),
                                ignore_index=ignore_index, label_smoothing=label_smoothing)
