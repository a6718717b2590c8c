"""Watch gradients flow: a step-by-step record of the forward and the backward pass.

    with minilm.trace() as tr:
        loss = model(x, y)
        loss.backward()
    print(tr.table())          # every op, forward then backward, with value and gradient stats
    print(tr.step(12))         # one step: the backward formula applied, and small arrays in full

Rows, in order of execution:
    forward      op, module path, input shapes -> output shape, output summary (mean/std/min/max)
    backward     op, module path, incoming gradient dL/d(out) and the gradient sent to each input
                 (norm, mean, max |g|, share of zeros)
    unbroadcast  the engine summing a broadcast gradient back to its input's shape: its own step
"""
from __future__ import annotations

import contextlib
import json
from dataclasses import asdict, dataclass, field

import numpy as np

from . import function

SMALL = 24            # arrays with at most this many elements are kept in full for step()


def grad_stats(g) -> dict:
    g = np.asarray(g, dtype=np.float64)
    if g.size == 0:
        return {"shape": list(g.shape), "norm": 0.0, "mean": 0.0, "max_abs": 0.0, "zero_share": 1.0}
    return {"shape": list(g.shape), "norm": float(np.sqrt(np.sum(g * g))), "mean": float(g.mean()),
            "max_abs": float(np.abs(g).max()), "zero_share": float(np.mean(g == 0))}


def value_stats(x) -> dict:
    x = np.asarray(x)
    if x.dtype.kind not in "fiub" or x.size == 0:
        return {"shape": list(x.shape), "dtype": str(x.dtype)}
    x64 = x.astype(np.float64)
    return {"shape": list(x.shape), "dtype": str(x.dtype), "mean": float(x64.mean()), "std": float(x64.std()),
            "min": float(x64.min()), "max": float(x64.max())}


def _small(x):
    x = np.asarray(x)
    return x.tolist() if x.size <= SMALL else None


@dataclass
class TraceRow:
    index: int
    phase: str                         # "forward" | "backward" | "unbroadcast"
    op: str
    module: str
    formula: str = ""
    inputs: list = field(default_factory=list)       # forward: value stats; backward: grads to inputs
    outputs: list = field(default_factory=list)      # forward: value stats; backward: incoming grads
    small_inputs: list = field(default_factory=list)
    small_outputs: list = field(default_factory=list)


class Trace:
    def __init__(self, keep_inputs: bool = False):
        self.rows: list[TraceRow] = []
        self.keep_inputs = keep_inputs
        self.calls = {}            # id(node) -> (Function, inputs, kwargs), when keep_inputs
        self.nodes = []            # the Node of each backward row (same order), when keep_inputs

    # ----- observer protocol (called by Function.apply and the engine) -----------------------
    def on_forward(self, fn, node, inputs, outputs, kwargs):
        if self.keep_inputs and node is not None:
            self.calls[id(node)] = (fn, inputs, kwargs)
        arrays = [getattr(x, "data", x) for x in inputs]
        arrays = [a for a in arrays if isinstance(a, np.ndarray)]
        self.rows.append(TraceRow(len(self.rows), "forward", fn.op_name(), node.module_path if node else "",
                                  fn.formula, [value_stats(a) for a in arrays],
                                  [value_stats(o.data) for o in outputs],
                                  [_small(a) for a in arrays], [_small(o.data) for o in outputs]))

    def on_backward(self, node, grads_out, grads_in):
        if self.keep_inputs:
            self.nodes.append((len(self.rows), node, grads_out))
        sent = [grad_stats(g) if g is not None and p is not None else None
                for p, g in zip(node.parents, grads_in)]
        self.rows.append(TraceRow(len(self.rows), "backward", node.name, node.module_path,
                                  node.function.formula, sent, [grad_stats(g) for g in grads_out],
                                  [_small(g) if g is not None and p is not None else None
                                   for p, g in zip(node.parents, grads_in)],
                                  [_small(g) for g in grads_out]))

    def on_unbroadcast(self, node, position, before, after):
        self.rows.append(TraceRow(len(self.rows), "unbroadcast", f"unbroadcast[{node.name} input {position}]",
                                  node.module_path,
                                  f"sum over broadcast axes: {tuple(before.shape)} -> {tuple(after.shape)}",
                                  [grad_stats(after)], [grad_stats(before)], [_small(after)], [_small(before)]))

    # ----- views ----------------------------------------------------------------------------
    def ops(self, phase: str | None = None) -> list[str]:
        return [r.op for r in self.rows if phase is None or r.phase == phase]

    def table(self, phase: str | None = None, max_rows: int | None = None) -> str:
        head = f"{'#':>4}  {'phase':<11} {'op':<28} {'module':<22} {'shapes':<34} {'|g| norm':>10} {'max|g|':>10} {'zeros':>6}"
        lines = [head, "-" * len(head)]
        rows = [r for r in self.rows if phase is None or r.phase == phase]
        for r in rows[:max_rows]:
            if r.phase == "forward":
                shapes = ", ".join(str(tuple(s["shape"])) for s in r.inputs) + " -> " + \
                    ", ".join(str(tuple(s["shape"])) for s in r.outputs)
                stats = f"{'':>10} {'':>10} {'':>6}"
            else:
                incoming = r.outputs[0] if r.outputs else None
                shapes = ", ".join(str(tuple(s["shape"])) for s in r.outputs) + " -> " + \
                    ", ".join(str(tuple(s["shape"])) if s else "-" for s in r.inputs)
                stats = (f"{incoming['norm']:>10.3e} {incoming['max_abs']:>10.3e} {incoming['zero_share']:>6.0%}"
                         if incoming else "")
            lines.append(f"{r.index:>4}  {r.phase:<11} {r.op[:28]:<28} {r.module[:22]:<22} {shapes[:34]:<34} {stats}")
        return "\n".join(lines)

    def step(self, i: int) -> str:
        r = self.rows[i]
        lines = [f"step {r.index}: {r.phase} of {r.op}" + (f" in {r.module}" if r.module else "")]
        if r.formula:
            lines.append(f"  formula: {r.formula}")
        label_out, label_in = ("output", "input") if r.phase == "forward" else ("dL/d(out)", "dL/d(input)")
        for k, (s, small) in enumerate(zip(r.outputs, r.small_outputs)):
            lines.append(f"  {label_out} {k}: {_describe(s)}")
            if small is not None:
                lines.append(f"      = {np.array2string(np.asarray(small), precision=5)}")
        for k, (s, small) in enumerate(zip(r.inputs, r.small_inputs)):
            if s is None:
                lines.append(f"  {label_in} {k}: (no gradient: constant or frozen)")
                continue
            lines.append(f"  {label_in} {k}: {_describe(s)}")
            if small is not None:
                lines.append(f"      = {np.array2string(np.asarray(small), precision=5)}")
        return "\n".join(lines)

    def to_json(self) -> str:
        return json.dumps([asdict(r) for r in self.rows])

    def __len__(self):
        return len(self.rows)


def _describe(s: dict) -> str:
    shape = tuple(s["shape"])
    if "norm" in s:
        return f"shape {shape}, norm {s['norm']:.4g}, mean {s['mean']:.4g}, max|g| {s['max_abs']:.4g}, zeros {s['zero_share']:.0%}"
    if "mean" in s:
        return f"shape {shape}, mean {s['mean']:.4g}, std {s['std']:.4g}, min {s['min']:.4g}, max {s['max']:.4g}"
    return f"shape {shape}, dtype {s.get('dtype')}"


@contextlib.contextmanager
def trace(keep_inputs: bool = False):
    """Record every op of the forward and backward passes run inside the block.
    keep_inputs=True also keeps each op's inputs, so one step can be re-checked numerically."""
    recorder = Trace(keep_inputs)
    function.OBSERVERS.append(recorder)
    try:
        yield recorder
    finally:
        function.OBSERVERS.remove(recorder)
