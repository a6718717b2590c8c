"""verify_attention: point it at any fused attention kernel and get a Report.

    report = verify_attention(my_forward, my_backward, supports=Supports(causal="top-left"),
                              layout="BHSD", dtypes=("float32",), max_examples=50, seed=0)
    print(report); assert report.ok

Search, per call:
  1. boundary sweep: a fixed list of problems in which every size 2^k - 1, 2^k, 2^k + 1 appears as
     Nq, Nk and D (strategies.boundary_specs); a failure found here is shrunk greedily;
  2. hypothesis: `max_examples` drawn problems (strategies.attention_specs), seeded; each
     property that fails is its own bug to hypothesis, which shrinks it to the smallest case.
Every problem is checked for every claimed property (properties.py) against the float64
reference with the error budget of budget.py.
"""
from __future__ import annotations

import random
from dataclasses import replace

from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis.errors import Flaky

from .kernel_call import NUMPY_DTYPES, TORCH_DTYPES, KernelCall
from .properties import PROPERTIES, Claims, evaluate
from .report import PropertyResult, Report
from .strategies import AttentionSpec, attention_specs, boundary_sizes, boundary_specs, constrain_spec
from .supports import Supports

_PROPERTY_ERRORS = {name: type(f"PropertyFailed[{name}]", (AssertionError,), {}) for name in PROPERTIES}
SHRINK_CALLS = 300


def _name(function) -> str | None:
    if function is None:
        return None
    return f"{getattr(function, '__module__', '?')}:{getattr(function, '__qualname__', repr(function))}"


def _detect_torch(forward) -> bool:
    """torch="auto": a function from a torch module, or one that fails on NumPy but runs on torch."""
    if (getattr(forward, "__module__", "") or "").startswith("torch"):
        return True
    import numpy as np
    q = np.zeros((1, 1, 2, 4), np.float32)
    try:
        forward(q, q, q, causal=False, scale=None, key_padding_mask=None)
        return False
    except Exception:  # noqa: BLE001
        import torch
        t = torch.zeros(1, 1, 2, 4)
        forward(t, t, t, causal=False, scale=None, key_padding_mask=None)
        return True


def _claimed_properties(supports: Supports, claims: Claims, max_batch: int) -> set[str]:
    claimed = {"runs", "finite", "out", "no mutation"}
    if claims.returns_lse:
        claimed.add("lse")
    if claims.backward:
        claimed |= {"dq", "dk", "dv", "strided dout"}
    if supports.padding_mask or supports.causal:
        claimed.add("masked rows")
    if max_batch > 1:
        claimed.add("batch")
    if claims.deterministic:
        claimed.add("determinism")
    return claimed


def _simpler(spec: AttentionSpec, head_dim_values) -> list[AttentionSpec]:
    """Candidate simplifications of a failing spec, simplest first."""
    def smaller(value):
        return sorted(({1, 2, value // 2, value - 1} | set(boundary_sizes(1, value))) - {value, 0})
    candidates = [replace(spec, batch=1), replace(spec, kv_heads=1), replace(spec, group=1)]
    candidates += [replace(spec, seq_q=n) for n in smaller(spec.seq_q)]
    candidates += [replace(spec, seq_k=n) for n in smaller(spec.seq_k)]
    dims = [d for d in head_dim_values if d < spec.head_dim] if head_dim_values else smaller(spec.head_dim)
    candidates += [replace(spec, head_dim=d) for d in dims]
    candidates += [replace(spec, causal=False), replace(spec, mask_fraction=None, mask_last_key=False, mask_last_row=False),
                   replace(spec, mask_last_row=False), replace(spec, mask_last_key=False),
                   replace(spec, logit=1.0), replace(spec, identical_keys=False), replace(spec, scale=None),
                   replace(spec, seed=0)]
    if spec.mask_fraction:
        candidates.append(replace(spec, mask_fraction=0.0))
    return candidates


def verify_attention(forward, backward=None, *, supports: Supports | None = None, layout: str = "BHSD",
                     dtypes=None, max_examples: int = 50, seed: int | None = None, torch=False,
                     max_batch: int = 2, max_heads: int = 4, max_seq: int = 64, max_logit: float = 1e3,
                     boundary: bool = True) -> Report:
    """Check a fused attention kernel against the float64 reference on every claimed feature.

    forward(q, k, v, *, causal, scale, key_padding_mask) -> out or (out, lse) (Supports.returns_lse);
    backward(dout, q, k, v, out, lse, *, causal, scale, key_padding_mask) -> (dq, dk, dv), or None:
    with torch=True the gradients then come from torch autograd through `forward`.
    torch: False (NumPy arrays), True (torch CPU tensors) or "auto". Returns a Report.
    """
    supports = supports or Supports()
    use_torch = _detect_torch(forward) if torch == "auto" else bool(torch)
    dtypes = tuple(dtypes or supports.dtypes)
    allowed_dtypes = TORCH_DTYPES if use_torch else NUMPY_DTYPES
    for dtype in dtypes:
        if dtype not in allowed_dtypes:
            raise ValueError(f"dtype {dtype!r} is not available with {'torch' if use_torch else 'NumPy'} arrays; "
                             f"choose from {allowed_dtypes}")
    call = KernelCall(forward, backward, layout=layout, use_torch=use_torch, returns_lse=supports.returns_lse)
    has_backward = call.has_backward if supports.backward is None else supports.backward
    if has_backward and not call.has_backward:
        raise ValueError("Supports.backward=True needs a backward function, or torch=True for autograd")
    claims = Claims(supports.causal, supports.returns_lse, has_backward, supports.deterministic)
    seed = random.randrange(2**31) if seed is None else int(seed)
    claimed = _claimed_properties(supports, claims, max_batch)

    shape_args = dict(dtypes=dtypes, max_batch=max_batch, max_heads=max_heads if supports.gqa else max_heads,
                      max_seq_q=max_seq, max_seq_k=max_seq, head_dims=supports.head_dim_values,
                      max_head_dim=supports.head_dims[1], causal=(False, True) if supports.causal else (False,),
                      gqa=supports.gqa, equal_lengths=not supports.unequal_lengths, masks=supports.padding_mask,
                      empty_rows=supports.empty_rows, custom_scale=supports.custom_scale, max_logit=max_logit,
                      bottom_right=supports.causal != "top-left")
    constraint_args = dict(empty_rows=supports.empty_rows, bottom_right=supports.causal != "top-left",
                           equal_lengths=not supports.unequal_lengths)

    results = {name: PropertyResult(name, name in claimed) for name in PROPERTIES}
    report = Report(_name(forward), _name(backward), layout, use_torch, supports, dtypes, seed, max_examples,
                    results=results, untested=supports.untested(has_backward))
    data = {"forward": forward, "backward": backward, "claims": claims}
    recorded: dict[str, list] = {name: [] for name in PROPERTIES}

    def run(spec: AttentionSpec, count: bool = True):
        outcome = evaluate(spec, call, claims)
        if count:
            report.examples += 1
        for name, check in outcome.checks.items():
            if name not in claimed or not check.applicable:
                continue
            if count:
                results[name].examples += 1
            if check.failure is not None:
                recorded[name].append(check.failure)
            elif check.ratio is not None:
                results[name].worst_ratio = max(results[name].worst_ratio or 0.0, check.ratio)
        return outcome

    def settle(name: str, found_by: str):
        smallest = min(recorded[name], key=lambda failure: failure.spec.size())
        smallest.found_by = found_by
        results[name].failure = smallest
        report.reproducible[name] = data

    def shrink(spec: AttentionSpec, name: str) -> AttentionSpec:
        """Greedy: take the first simpler spec that still fails `name`, until none does."""
        best, calls, improved = spec, 0, True
        while improved and calls < SHRINK_CALLS:
            improved = False
            for candidate in _simpler(best, supports.head_dim_values):
                candidate = constrain_spec(candidate, **constraint_args)
                if candidate.size() >= best.size():
                    continue
                calls += 1
                if run(candidate, count=False).checks[name].failure is not None:
                    best, improved = candidate, True
                    break
        return best

    # 1. the boundary sweep, each failure shrunk greedily
    if boundary:
        for spec in boundary_specs(**shape_args):
            outcome = run(spec)
            for name in PROPERTIES:
                if name not in claimed or outcome.checks[name].failure is None or results[name].failure is not None:
                    continue
                best = shrink(spec, name)
                recorded[name] = [f for f in recorded[name] if f.spec == best] or recorded[name]
                settle(name, "the boundary sweep, then shrunk")

    # 2. hypothesis, for the properties still standing; rounds for failures masked by an earlier one
    for _ in range(3):
        pending = {name for name in claimed if results[name].failure is None}
        if not pending or max_examples <= 0:
            break
        raised: set[str] = set()
        before = {name: len(recorded[name]) for name in PROPERTIES}

        @settings(database=None, max_examples=max_examples, deadline=None, report_multiple_bugs=True,
                  verbosity=Verbosity.quiet, suppress_health_check=list(HealthCheck),
                  phases=(Phase.generate, Phase.shrink), print_blob=False)
        @hypothesis_seed(seed)
        @given(spec=attention_specs(**shape_args))
        def search(spec):
            failure = run(spec).first_failure(pending)
            if failure is not None:
                raised.add(failure.prop)
                raise _PROPERTY_ERRORS[failure.prop](failure.message)

        try:
            search()
        except (AssertionError, Flaky, BaseExceptionGroup) as error:
            leaves = error.exceptions if isinstance(error, BaseExceptionGroup) else [error]
            foreign = [e for e in leaves if not isinstance(e, (AssertionError, Flaky, BaseExceptionGroup))]
            if foreign:
                raise foreign[0]
        for name in pending & raised:
            smallest = min(recorded[name][before[name]:], key=lambda failure: failure.spec.size())
            best = shrink(smallest.spec, name)            # a last greedy pass over the spec's fields
            recorded[name] = [f for f in recorded[name] if f.spec == best] or recorded[name][before[name]:]
            settle(name, "hypothesis, shrunk")
        masked = {name for name in pending - raised if len(recorded[name]) > before[name]}
        if not masked:
            break
    return report


def assert_attention_correct(forward, backward=None, **options) -> Report:
    """pytest helper: run verify_attention and fail with the printed report unless it is ok.

        from kernels.testing import assert_attention_correct
        def test_my_kernel(): assert_attention_correct(my_forward, my_backward, seed=0)
    """
    report = verify_attention(forward, backward, **options)
    if not report.ok:
        raise AssertionError("\n" + str(report))
    return report
