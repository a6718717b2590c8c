"""Testing tools for attention kernels: hypothesis strategies and the attention verifier.

    from kernels.testing import verify_attention, assert_attention_correct, Supports
    report = verify_attention(forward, backward, supports=Supports(causal="top-left"), seed=0)
    print(report); report.ok; report.to_json(); report.write_reproducer("repro.py")

Command line: python -m kernels.testing.cli MODULE:FUNCTION [--backward MODULE:FUNCTION] ...
"""
from .report import Report
from .supports import Supports
from .verify import assert_attention_correct, verify_attention

__all__ = ["verify_attention", "assert_attention_correct", "Supports", "Report"]
