"""The properties checked on one drawn problem, each a named check with its own failure record.

Order matters: when one example breaks several properties, the first is the one raised to
hypothesis (and shrunk); the rest are recorded too.

    runs            the kernel accepts every claimed input and returns the documented shapes
    finite          no NaN/inf where the float64 reference has none (it has none for valid input)
    masked rows     a row with no visible key: out exactly 0, lse -inf, dq 0; a key no query sees: dk, dv 0
    out lse dq dk dv  max |kernel - float64 reference| within the error budget (budget.py)
    strided dout    gradients with a non-contiguous dout within the same budget
    batch           a batch row's output alone equals its output batched (within the budget)
    determinism     repeated calls give bit-identical results
    no mutation     q, k, v, mask, dout, out, lse unchanged by the calls
"""
from __future__ import annotations

import traceback
from dataclasses import dataclass, field

import numpy as np

from .budget import Budget, budget_for, max_error
from .oracle import (EPSILON, allowed_keys, dense_backward, dense_forward, magnitudes, oracle_backward,
                     oracle_forward)
from .strategies import AttentionSpec, build_attention_case, effective_scale

PROPERTIES = ("runs", "finite", "masked rows", "out", "lse", "dq", "dk", "dv", "strided dout", "batch",
              "determinism", "no mutation")
DESCRIPTIONS = {
    "runs": "accepts every claimed input, returns the documented shapes",
    "finite": "no NaN/inf where the float64 reference has none",
    "masked rows": "no visible key: out 0, lse -inf, zero gradients",
    "out": "output vs float64 reference, within budget",
    "lse": "log-sum-exp (natural log) vs float64 reference",
    "dq": "dq vs float64 reference",
    "dk": "dk vs float64 reference (summed over GQA groups)",
    "dv": "dv vs float64 reference (summed over GQA groups)",
    "strided dout": "gradients with a non-contiguous dout",
    "batch": "a batch row alone gives the same output as batched",
    "determinism": "bit-identical results over repeated calls",
    "no mutation": "inputs unchanged by forward and backward",
}


@dataclass
class Failure:
    prop: str
    spec: AttentionSpec
    message: str
    error: float | None = None
    budget: Budget | None = None
    index: tuple | None = None         # first mismatching element, canonical (B, H, N, D) layout
    array: str | None = None
    kernel_value: float | None = None
    reference_value: float | None = None
    found_by: str = "hypothesis"

    def to_dict(self, alignment: str) -> dict:
        return {"property": self.prop, "case": self.spec.describe(alignment), "spec": vars(self.spec).copy(),
                "message": self.message, "error": self.error,
                "budget": None if self.budget is None else self.budget.to_dict(),
                "first_mismatch": None if self.index is None else {"array": self.array, "index": list(self.index),
                                                                   "kernel": self.kernel_value,
                                                                   "reference": self.reference_value},
                "found_by": self.found_by}


@dataclass
class Check:
    applicable: bool = False
    failure: Failure | None = None
    ratio: float | None = None         # error / budget, for the budgeted properties


@dataclass
class Claims:
    alignment: str | None
    returns_lse: bool
    backward: bool
    deterministic: bool


@dataclass
class Outcome:
    checks: dict = field(default_factory=lambda: {name: Check() for name in PROPERTIES})

    def fail(self, name, spec, message, **details):
        check = self.checks[name]
        check.applicable = True
        if check.failure is None:
            check.failure = Failure(name, spec, message, **details)

    def ok(self, name, ratio=None):
        check = self.checks[name]
        check.applicable = True
        if ratio is not None:
            check.ratio = ratio if check.ratio is None else max(check.ratio, ratio)

    def first_failure(self, among) -> Failure | None:
        for name in PROPERTIES:
            if name in among and self.checks[name].failure is not None:
                return self.checks[name].failure
        return None


def _index_label(array: str, index) -> str:
    names = ("b", "h", "i", "d") if array in ("out", "dq") else ("b", "h", "j", "d") if array in ("dk", "dv") else ("b", "h", "i")
    return f"{array}[" + ", ".join(f"{n}={i}" for n, i in zip(names, index)) + "]"


def compare(outcome, name, prop, spec, result, truth, budget: Budget, where=None, what=None):
    """Record prop as passed or failed: max |result - truth| <= budget, first mismatch located."""
    error = max_error(result, truth, where)
    worst = float(error.max()) if error.size else 0.0
    if worst <= budget.value:
        outcome.ok(prop, worst / budget.value)
        return
    index = tuple(int(i) for i in np.argwhere(error > budget.value)[0])
    outcome.fail(prop, spec, f"{what or name}: max |kernel - reference| = {worst:.3g} > budget {budget.explain()}; "
                 f"first mismatch at {_index_label(name, index)}: kernel {result[index]:.6g}, "
                 f"reference {truth[index]:.6g}",
                 error=worst, budget=budget, index=index, array=name, kernel_value=float(result[index]),
                 reference_value=float(truth[index]))


def _snapshot(arrays):
    from .kernel_call import to_float64
    return [None if x is None else to_float64(x).copy() for x in arrays]


def _unchanged(before, arrays):
    from .kernel_call import to_float64
    return all(b is None or np.array_equal(b, to_float64(x), equal_nan=True) for b, x in zip(before, arrays))


def _first_nonfinite(name, x):
    bad = np.argwhere(~np.isfinite(x))
    return None if bad.size == 0 else (name, tuple(int(i) for i in bad[0]), float(x[tuple(bad[0])]))


def evaluate(spec: AttentionSpec, call, claims: Claims) -> Outcome:
    """Run the kernel on the problem `spec` and check every property; never raises for kernel errors."""
    outcome = Outcome()
    case = build_attention_case(spec)
    dtype, scale = spec.dtype, effective_scale(spec)
    mask = case.key_padding_mask
    flags = dict(causal=spec.causal, key_padding_mask=mask, scale=spec.scale)
    alignment = claims.alignment or "bottom-right"
    allowed = allowed_keys(spec.batch, spec.seq_q, spec.seq_k, spec.causal, alignment, mask)
    eps = EPSILON[dtype]

    # float64 truth, the same-precision naive yardstick, and the magnitudes of the rounding floor
    out_ref, lse_ref = oracle_forward(case.q, case.k, case.v, alignment=alignment, **flags)
    out_naive, lse_naive = dense_forward(case.q, case.k, case.v, allowed, scale, dtype)
    sizes = magnitudes(case.q, case.k, case.v, case.dout, out_ref, allowed, scale)
    budgets = {}
    naive = {"out": out_naive, "lse": lse_naive}
    truth = {"out": out_ref, "lse": lse_ref}
    if claims.backward:
        truth.update(zip(("dq", "dk", "dv"), oracle_backward(case.dout, case.q, case.k, case.v, out_ref, lse_ref,
                                                             alignment=alignment, **flags)))
        naive.update(zip(("dq", "dk", "dv"), dense_backward(case.dout, case.q, case.k, case.v, allowed, scale, dtype)))
    for name in naive:
        naive_error = float(max_error(naive[name], truth[name]).max(initial=0.0))
        if not np.isfinite(naive_error):       # the naive formula overflowed: measure it finitely
            naive_error = sizes[name]
        budgets[name] = budget_for(name, naive_error, eps, sizes["max_logit"], sizes[name])

    # the kernel
    q, k, v = (call.array(x, dtype) for x in (case.q, case.k, case.v))
    mask_k = call.small(mask, dtype)
    kernel_flags = dict(causal=spec.causal, scale=spec.scale, key_padding_mask=mask_k)
    inputs = [q, k, v, mask_k]
    before = _snapshot(inputs)
    stage = "forward"
    try:
        out_raw, lse_raw = call.forward(q, k, v, **kernel_flags)
        out = call.canonical(out_raw)
        lse = None if lse_raw is None else call.canonical(lse_raw)
        if out.shape != out_ref.shape:
            raise ValueError(f"out has shape {out.shape} in the canonical (B, H, Nq, D) layout; expected {out_ref.shape}")
        if lse is not None and lse.shape != lse_ref.shape:
            raise ValueError(f"lse has shape {lse.shape}; expected (B, H, Nq) = {lse_ref.shape}")
        stage = "repeated forward"
        out_again_raw, lse_again_raw = call.forward(q, k, v, **kernel_flags)
        grads = grads_again = grads_strided = None
        if claims.backward:
            stage = "backward"
            lse_for_backward = lse_raw if lse_raw is not None else call.small(
                lse_ref, "float32" if dtype in ("float16", "bfloat16") else dtype)
            dout = call.array(case.dout, dtype)
            dout_strided = call.strided_array(case.dout, dtype)
            inputs += [dout, dout_strided, out_raw, lse_for_backward]
            before += _snapshot(inputs[4:])
            grads = [call.canonical(g) for g in call.backward(dout, q, k, v, out_raw, lse_for_backward, **kernel_flags)]
            for name, g in zip(("dq", "dk", "dv"), grads):
                if g.shape != truth[name].shape:
                    raise ValueError(f"{name} has shape {g.shape} in the canonical layout; expected {truth[name].shape}")
            stage = "repeated backward"
            grads_again = [call.canonical(g) for g in call.backward(dout, q, k, v, out_raw, lse_for_backward, **kernel_flags)]
            stage = "backward with a non-contiguous dout"
            grads_strided = [call.canonical(g) for g in
                             call.backward(dout_strided, q, k, v, out_raw, lse_for_backward, **kernel_flags)]
        out_alone = None
        if spec.batch > 1:
            stage = "forward on the last batch row alone"
            last = lambda x: None if x is None else x[-1:]
            out_alone = call.canonical(call.forward(last(q), last(k), last(v), causal=spec.causal, scale=spec.scale,
                                                    key_padding_mask=last(mask_k))[0])
    except Exception as error:  # noqa: BLE001 - any kernel error is a finding, reported with its case
        where = traceback.extract_tb(error.__traceback__)[-1]
        outcome.fail("runs", spec, f"{stage} raised {type(error).__name__}: {error} "
                     f"(at {where.filename.rsplit('/', 1)[-1]}:{where.lineno})")
        return outcome
    outcome.ok("runs")

    # NaN / inf exactly where the reference has them
    results = {"out": out, "lse": lse}
    if grads is not None:
        results.update(zip(("dq", "dk", "dv"), grads))
    bad = None
    for name, x in results.items():
        if x is None:
            continue
        finite_or_neg_inf = np.isfinite(x) | ((x == -np.inf) & (truth[name] == -np.inf)) if name == "lse" else np.isfinite(x)
        bad = bad or _first_nonfinite(name, np.where(finite_or_neg_inf, 0.0, x))
    if bad:
        name, index, value = bad
        outcome.fail("finite", spec, f"{_index_label(name, index)} = {value} where the reference is "
                     f"{truth[name][index]:.6g}", index=index, array=name, kernel_value=value,
                     reference_value=float(truth[name][index]))
    else:
        outcome.ok("finite")

    # rows with no visible key, keys seen by no query
    empty_rows = ~np.isfinite(lse_ref)                                        # (B, H, Nq)
    unseen_keys = ~allowed.any(axis=2)[:, 0]                                  # (B, Nk)
    if empty_rows.any() or unseen_keys.any():
        problems = []
        if (out[empty_rows] != 0).any():
            problems.append(("out", out, empty_rows[..., None] & (out != 0), "output must be exactly 0"))
        if lse is not None and (lse[empty_rows] != -np.inf).any():
            problems.append(("lse", lse, empty_rows & (lse != -np.inf), "lse must be -inf"))
        if grads is not None:
            dq, dk, dv = grads
            if (dq[empty_rows] != 0).any():
                problems.append(("dq", dq, empty_rows[..., None] & (dq != 0), "dq must be exactly 0"))
            unseen = unseen_keys[:, None, :, None]
            for name, g in (("dk", dk), ("dv", dv)):
                if (g[np.broadcast_to(unseen, g.shape)] != 0).any():
                    problems.append((name, g, unseen & (g != 0), f"{name} of a key no query sees must be exactly 0"))
        if problems:
            name, x, wrong, rule = problems[0]
            index = tuple(int(i) for i in np.argwhere(wrong)[0])
            outcome.fail("masked rows", spec, f"{rule}: {_index_label(name, index)} = {x[index]:.6g}",
                         index=index, array=name, kernel_value=float(x[index]),
                         reference_value=float(truth[name][index]))
        else:
            outcome.ok("masked rows")

    # the error budget
    compare(outcome, "out", "out", spec, out, out_ref, budgets["out"])
    if lse is not None:
        compare(outcome, "lse", "lse", spec, lse, lse_ref, budgets["lse"])
    if grads is not None:
        for name, g in zip(("dq", "dk", "dv"), grads):
            compare(outcome, name, name, spec, g, truth[name], budgets[name])
        before_failures = outcome.checks["strided dout"].failure
        for name, g in zip(("dq", "dk", "dv"), grads_strided):
            compare(outcome, name, "strided dout", spec, g, truth[name], budgets[name],
                    what=f"{name} with a non-contiguous dout")
            if outcome.checks["strided dout"].failure is not before_failures:
                break

    if out_alone is not None:
        compare(outcome, "out", "batch", spec, out_alone, out[-1:], budgets["out"],
                what=f"out of batch row {spec.batch - 1} computed alone vs batched")

    if claims.deterministic:
        repeats = [("out", out, call.canonical(out_again_raw))]
        if lse_raw is not None:
            repeats.append(("lse", lse, call.canonical(lse_again_raw)))
        if grads is not None:
            repeats += [(n, a, b) for n, a, b in zip(("dq", "dk", "dv"), grads, grads_again)]
        for name, first, second in repeats:
            if not np.array_equal(first, second, equal_nan=True):
                index = tuple(int(i) for i in np.argwhere(~((first == second) | (np.isnan(first) & np.isnan(second))))[0])
                outcome.fail("determinism", spec, f"two identical calls differ at {_index_label(name, index)}: "
                             f"{first[index]!r} then {second[index]!r}", index=index, array=name,
                             kernel_value=float(second[index]), reference_value=float(first[index]))
                break
        else:
            outcome.ok("determinism")

    labels = ["q", "k", "v", "key_padding_mask", "dout", "dout (strided)", "out", "lse"]
    changed = [label for label, b, x in zip(labels, before, inputs) if b is not None and not _unchanged([b], [x])]
    if changed:
        outcome.fail("no mutation", spec, f"the kernel modified its input(s): {', '.join(changed)}")
    else:
        outcome.ok("no mutation")
    return outcome
