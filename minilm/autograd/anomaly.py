"""Anomaly mode: stop at the first op whose forward or backward produces NaN or inf.

    with minilm.detect_anomaly():
        loss = model(x, y); loss.backward()
    # NonFiniteError: forward of log in blocks.1.attn produced 3 NaN/inf value(s) from finite inputs;
    #   input 0: shape (4, 8), min -0.2, max 3.1 ...

Slow (every array is scanned); for debugging only, as torch.autograd.detect_anomaly.
"""
from __future__ import annotations

import contextlib

import numpy as np

from ..errors import NonFiniteError
from . import function
from .trace import value_stats


def _nonfinite(x) -> int:
    x = np.asarray(x)
    if x.dtype.kind not in "fc":
        return 0
    return int(x.size - np.count_nonzero(np.isfinite(x)))


def _stats_lines(arrays, label) -> list[str]:
    lines = []
    for k, a in enumerate(arrays):
        if a is None or not isinstance(a, np.ndarray):
            continue
        s = value_stats(a)
        bad = _nonfinite(a)
        if "mean" in s:
            lines.append(f"  {label} {k}: shape {tuple(s['shape'])}, min {s['min']:.4g}, max {s['max']:.4g}, "
                         f"mean {s['mean']:.4g}, non-finite {bad}")
        else:
            lines.append(f"  {label} {k}: shape {tuple(s['shape'])}, dtype {s['dtype']}")
    return lines


class AnomalyDetector:
    def on_forward(self, fn, node, inputs, outputs, kwargs):
        arrays = [getattr(x, "data", x) for x in inputs]
        bad = sum(_nonfinite(o.data) for o in outputs)
        if bad:
            source = "from finite inputs" if not any(_nonfinite(a) for a in arrays if isinstance(a, np.ndarray)) \
                else "(an input was already non-finite)"
            where = f" in {node.module_path}" if node is not None and node.module_path else ""
            raise NonFiniteError("\n".join([f"forward of {fn.op_name()}{where} produced {bad} NaN/inf value(s) {source}",
                                            *_stats_lines(arrays, "input")]))

    def on_backward(self, node, grads_out, grads_in):
        bad = sum(_nonfinite(g) for g in grads_in if g is not None)
        if bad:
            where = f" in {node.module_path}" if node.module_path else ""
            incoming = "finite" if not any(_nonfinite(g) for g in grads_out) else "already non-finite"
            raise NonFiniteError("\n".join(
                [f"backward of {node.name}{where} produced {bad} NaN/inf gradient value(s) (incoming gradient {incoming})",
                 f"  formula: {node.function.formula}", *_stats_lines(list(node.ctx.saved), "saved"),
                 *_stats_lines(list(grads_out), "dL/d(out)")]))

    def on_unbroadcast(self, node, position, before, after):
        pass


@contextlib.contextmanager
def detect_anomaly():
    detector = AnomalyDetector()
    function.OBSERVERS.append(detector)
    try:
        yield detector
    finally:
        function.OBSERVERS.remove(detector)
