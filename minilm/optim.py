"""Optimizers (SGD with momentum/nesterov/weight decay, Adam, AdamW), gradient clipping and the
linear-warmup + cosine learning-rate schedule. Update rules follow torch.optim exactly (tests
compare step by step), written out so each line can be read against the paper.

    opt = AdamW(model.parameters(), lr=3e-4, weight_decay=0.1)
    loss.backward(); clip_grad_norm(model.parameters(), 1.0); opt.step(); opt.zero_grad()
"""
from __future__ import annotations

import math

import numpy as np

from .errors import MinilmError, NonFiniteError


class Optimizer:
    defaults: dict = {}
    SCALAR_STATE = ("step",)

    def __init__(self, params, **options):
        params = list(params)
        if not params:
            raise MinilmError(f"{type(self).__name__}: got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        self.param_groups = []
        for group in groups:
            full = {**self.defaults, **options, **group}
            full["params"] = [p for p in full["params"] if p.requires_grad]
            unknown = set(full) - set(self.defaults) - {"params"}
            if unknown:
                raise MinilmError(f"{type(self).__name__}: unknown option(s) {sorted(unknown)}; "
                                  f"known: {sorted(self.defaults)}")
            self.param_groups.append(full)
        self.state: dict[int, dict] = {}                 # id(param) -> per-parameter state
        self.step_count = 0

    def parameters(self):
        for group in self.param_groups:
            yield from group["params"]

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None

    def step(self) -> None:
        self.step_count += 1
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                self._update(p, p.grad, self.state.setdefault(id(p), {}), group)

    def _update(self, p, grad, state, group):  # pragma: no cover - abstract
        raise NotImplementedError

    # ----- checkpointing: state arrays in parameter order, so a resumed run continues exactly ---
    def state_dict(self) -> dict:
        arrays = {}
        for index, p in enumerate(self.parameters()):
            for key, value in self.state.get(id(p), {}).items():
                arrays[f"{index}.{key}"] = np.asarray(value)
        return {"step_count": self.step_count, "lrs": [g["lr"] for g in self.param_groups], "state": arrays}

    def load_state_dict(self, saved: dict) -> None:
        params = list(self.parameters())
        self.state = {}
        for name, value in saved["state"].items():
            index, key = name.split(".", 1)
            index = int(index)
            if index >= len(params):
                raise MinilmError(f"optimizer state names parameter {index}, but there are only {len(params)}")
            value = np.array(value)
            if key in self.SCALAR_STATE:                 # step counters are plain ints
                value = int(value.reshape(-1)[0])
            self.state.setdefault(id(params[index]), {})[key] = value
        self.step_count = int(saved["step_count"])
        for group, lr in zip(self.param_groups, saved["lrs"]):
            group["lr"] = float(lr)

    def state_bytes(self) -> int:
        """Memory held by optimizer state (momentum buffers, Adam moments)."""
        return sum(v.nbytes for s in self.state.values() for v in s.values() if isinstance(v, np.ndarray))


class SGD(Optimizer):
    """g += wd * p; buf = momentum * buf + (1 - dampening) * g (buf = g at the first step);
    g = g + momentum * buf (nesterov) or buf; p -= lr * g."""
    defaults = dict(lr=1e-2, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0)

    def _update(self, p, grad, state, group):
        momentum, wd = group["momentum"], group["weight_decay"]
        if group["nesterov"] and (momentum <= 0 or group["dampening"] != 0):
            raise MinilmError("SGD: nesterov needs momentum > 0 and dampening = 0")
        g = grad + wd * p.data if wd else grad
        if momentum:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = np.array(g, copy=True)
            else:
                buf *= momentum
                buf += (1 - group["dampening"]) * g
            g = g + momentum * buf if group["nesterov"] else buf
        p.data -= group["lr"] * g


class Adam(Optimizer):
    """m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps).
    weight_decay here is L2 added to the gradient (g += wd * p), as torch.optim.Adam."""
    defaults = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    decoupled = False

    def _update(self, p, grad, state, group):
        beta1, beta2 = group["betas"]
        lr, wd = group["lr"], group["weight_decay"]
        if wd and self.decoupled:
            p.data *= 1 - lr * wd                          # AdamW: decay the weight itself
        elif wd:
            grad = grad + wd * p.data
        if "exp_avg" not in state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(p.data)
            state["exp_avg_sq"] = np.zeros_like(p.data)
        state["step"] += 1
        t = state["step"]
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m *= beta1
        m += (1 - beta1) * grad
        v *= beta2
        v += (1 - beta2) * grad * grad
        step_size = lr / (1 - beta1 ** t)
        denom = np.sqrt(v) / math.sqrt(1 - beta2 ** t) + group["eps"]
        p.data -= (step_size * m / denom).astype(p.data.dtype, copy=False)


class AdamW(Adam):
    """Adam with decoupled weight decay: p *= (1 - lr * wd) before the Adam step (Loshchilov & Hutter)."""
    defaults = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2)
    decoupled = True


def clip_grad_norm(params, max_norm: float, error_if_nonfinite: bool = True) -> float:
    """Scale all gradients by min(1, max_norm / (total_norm + 1e-6)); return the total L2 norm."""
    grads = [p.grad for p in params if p.grad is not None]
    total = math.sqrt(sum(float(np.dot(g.ravel().astype(np.float64), g.ravel().astype(np.float64)))
                          for g in grads)) if grads else 0.0
    if not math.isfinite(total):
        if error_if_nonfinite:
            raise NonFiniteError(f"clip_grad_norm: the total gradient norm is {total}; some gradient holds NaN/inf")
        return total
    coefficient = max_norm / (total + 1e-6)
    if coefficient < 1.0:
        for g in grads:
            g *= g.dtype.type(coefficient)
    return total


def warmup_cosine(step: int, warmup_steps: int, total_steps: int, min_ratio: float = 0.1) -> float:
    """LR multiplier: linear from 0 to 1 over warmup_steps, then cosine from 1 down to min_ratio."""
    if warmup_steps and step < warmup_steps:
        return (step + 1) / warmup_steps
    if total_steps <= warmup_steps:
        return 1.0
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


class WarmupCosine:
    """Sets each group's lr to base_lr * warmup_cosine(step); call .step() after optimizer.step()."""

    def __init__(self, optimizer: Optimizer, warmup_steps: int, total_steps: int, min_ratio: float = 0.1):
        self.optimizer, self.warmup_steps, self.total_steps, self.min_ratio = optimizer, warmup_steps, total_steps, min_ratio
        self.base_lrs = [g["lr"] for g in optimizer.param_groups]
        self.current_step = 0
        self._apply()

    def _apply(self):
        mult = warmup_cosine(self.current_step, self.warmup_steps, self.total_steps, self.min_ratio)
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = base * mult

    def step(self) -> None:
        self.current_step += 1
        self._apply()

    def state_dict(self) -> dict:
        return {"current_step": self.current_step, "base_lrs": list(self.base_lrs)}

    def load_state_dict(self, saved: dict) -> None:
        self.current_step = int(saved["current_step"])
        self.base_lrs = [float(x) for x in saved["base_lrs"]]
        self._apply()
