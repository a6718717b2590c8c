"""A standalone script that re-runs one failing case: it imports the kernel, rebuilds the exact
inputs from the case's spec (deterministic: seeded), prints every property's verdict for it and
exits 1 while the kernel still fails."""
from __future__ import annotations

import inspect
import os
import sys

TEMPLATE = '''"""Reproducer written by kernels.testing.verify_attention.

Property that failed: {prop}
Smallest failing case: {case}
{message}

Run from anywhere: python {filename}   (exit status 1 while the kernel still fails)
"""
import sys

sys.path[:0] = {paths!r}

from kernels.testing.kernel_call import KernelCall
from kernels.testing.properties import PROPERTIES, Claims, evaluate
from kernels.testing.strategies import AttentionSpec, build_attention_case
{imports}
SPEC = AttentionSpec(**{spec!r})
CLAIMS = Claims(alignment={alignment!r}, returns_lse={returns_lse!r}, backward={backward!r}, deterministic={deterministic!r})
call = KernelCall(forward, backward, layout={layout!r}, use_torch={use_torch!r}, returns_lse={returns_lse!r})

case = build_attention_case(SPEC)       # float64 arrays, canonical (B, H, N, D) layout
print("case:", SPEC.describe({alignment!r}))
print("q", case.q.shape, "k", case.k.shape, "key_padding_mask", None if case.key_padding_mask is None else case.key_padding_mask.astype(int).tolist())
outcome = evaluate(SPEC, call, CLAIMS)
failed = False
for name in PROPERTIES:
    check = outcome.checks[name]
    if check.failure is not None:
        failed = True
        print(f"FAIL {{name}}: {{check.failure.message}}")
    elif check.applicable:
        print(f"pass {{name}}")
sys.exit(1 if failed else 0)
'''


def _import_line(function, alias: str) -> tuple[str, str | None]:
    if function is None:
        return f"{alias} = None\n", None
    module = getattr(function, "__module__", None)
    qualname = getattr(function, "__qualname__", "")
    if not module or "<" in qualname or module == "__main__":
        raise ValueError(f"cannot write a reproducer for {function!r}: it is not importable as "
                         f"module:function (define it at the top level of a module)")
    root = None
    file = getattr(sys.modules.get(module), "__file__", None)
    if file:
        root = os.path.dirname(os.path.abspath(file))
        for _ in range(module.count(".")):
            root = os.path.dirname(root)
    head, _, attr = qualname.partition(".")
    line = f"from {module} import {head} as {alias}\n" if not attr else f"from {module} import {head}\n{alias} = {head}.{attr}\n"
    return line, root


def reproducer_source(report, failure, data: dict) -> str:
    forward_line, forward_root = _import_line(data["forward"], "forward")
    backward_line, backward_root = _import_line(data["backward"], "backward")
    kernels_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(inspect.getfile(reproducer_source)))))
    paths = [p for p in dict.fromkeys([forward_root, backward_root, kernels_root]) if p]
    claims = data["claims"]
    return TEMPLATE.format(prop=failure.prop, case=failure.spec.describe(report.alignment),
                           message=failure.message, filename="<this file>", paths=paths,
                           imports=forward_line + backward_line, spec=vars(failure.spec),
                           alignment=claims.alignment, returns_lse=claims.returns_lse, backward=claims.backward,
                           deterministic=claims.deterministic, layout=report.layout, use_torch=report.use_torch)
