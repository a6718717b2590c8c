"""The verifier's report: a table when printed, JSON for machines, `ok` for scripts, and a
standalone reproducer for each failure.

    report.ok                     True only when every claimed property held on every example
    print(report)                 the table, then each failure's smallest case
    report.to_json(path=None)     the same as JSON (written to `path` when given)
    report.write_reproducer(path) a script that re-runs the smallest failing case (numpy + your kernel)
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from .properties import DESCRIPTIONS, PROPERTIES, Failure


@dataclass
class PropertyResult:
    name: str
    claimed: bool
    examples: int = 0
    worst_ratio: float | None = None       # max error / budget over passing examples
    failure: Failure | None = None

    @property
    def status(self) -> str:
        if not self.claimed:
            return "untested"
        if self.failure is not None:
            return "FAIL"
        return "pass" if self.examples else "not exercised"


@dataclass
class Report:
    kernel: str
    backward: str | None
    layout: str
    use_torch: bool
    supports: object
    dtypes: tuple
    seed: int
    max_examples: int
    examples: int = 0
    results: dict = field(default_factory=dict)
    untested: list = field(default_factory=list)
    reproducible: dict = field(default_factory=dict)   # property -> data for the reproducer

    @property
    def alignment(self) -> str:
        return self.supports.causal or "bottom-right"

    @property
    def failures(self) -> list[Failure]:
        return [r.failure for r in self.results.values() if r.failure is not None]

    @property
    def ok(self) -> bool:
        return not self.failures

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        kind = "torch" if self.use_torch else "numpy"
        lines = [f"verify_attention: {self.kernel}" + (f" + backward {self.backward}" if self.backward else ""),
                 f"  layout={self.layout} arrays={kind} dtypes={','.join(self.dtypes)} causal={self.supports.causal} "
                 f"seed={self.seed} examples={self.examples} (max_examples={self.max_examples} + boundary sweep)",
                 "",
                 f"  {'property':<14} {'status':<13} {'examples':>8}  {'err/budget':>10}  what",
                 f"  {'-' * 14} {'-' * 13} {'-' * 8}  {'-' * 10}  {'-' * 40}"]
        for name in PROPERTIES:
            result = self.results[name]
            ratio = "" if result.worst_ratio is None or result.failure else f"{result.worst_ratio:.2g}"
            if result.failure is not None and result.failure.error is not None and result.failure.budget:
                ratio = f"{result.failure.error / result.failure.budget.value:.3g}"
            lines.append(f"  {name:<14} {result.status:<13} {result.examples:>8}  {ratio:>10}  {DESCRIPTIONS[name]}")
        if self.untested:
            lines += ["", "  not claimed, so not tested: " + "; ".join(self.untested)]
        for failure in self.failures:
            lines += ["", f"  FAILED {failure.prop} (found by {failure.found_by}); smallest failing case:",
                      f"    {failure.spec.describe(self.alignment)}",
                      f"    {failure.message}"]
        lines += ["", f"  result: {'OK, every claimed property held' if self.ok else f'{len(self.failures)} propert' + ('y' if len(self.failures) == 1 else 'ies') + ' failed'}"
                  + ("" if self.ok else "; report.write_reproducer(path) writes a script for the first")]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"ok": self.ok, "kernel": self.kernel, "backward": self.backward, "layout": self.layout,
                "torch": self.use_torch, "supports": self.supports.to_dict(), "dtypes": list(self.dtypes),
                "seed": self.seed, "max_examples": self.max_examples, "examples": self.examples,
                "properties": {name: {"status": r.status, "examples": r.examples, "worst_error_over_budget": r.worst_ratio,
                                      "failure": None if r.failure is None else r.failure.to_dict(self.alignment)}
                               for name, r in self.results.items()},
                "untested": list(self.untested)}

    def to_json(self, path=None, indent: int = 2) -> str:
        text = json.dumps(self.to_dict(), indent=indent, default=float)
        if path is not None:
            with open(path, "w") as handle:
                handle.write(text + "\n")
        return text

    def write_reproducer(self, path, prop: str | None = None) -> str:
        """Write a standalone script re-running the smallest failing case of `prop` (default: the first)."""
        from .reproducer import reproducer_source
        if not self.failures:
            raise ValueError("the report has no failure to reproduce")
        failure = self.results[prop].failure if prop else self.failures[0]
        if failure is None:
            raise ValueError(f"property {prop!r} did not fail")
        source = reproducer_source(self, failure, self.reproducible[failure.prop])
        with open(path, "w") as handle:
            handle.write(source)
        return str(path)
