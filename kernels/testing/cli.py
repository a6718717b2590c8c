"""verify-attention: run the attention verifier on MODULE:FUNCTION from the command line.

    python -m kernels.testing.cli MODULE:FUNCTION [--backward MODULE:FUNCTION] [--torch]
        [--layout BHSD|BSHD] [--dtype float32 ...] [--causal top-left|bottom-right|none]
        [--no-mask] [--no-gqa] [--equal-lengths] [--head-dims LO:HI | D,D,...] [--no-lse]
        [--no-empty-rows] [--max-examples N] [--seed S] [--json PATH] [--reproducer PATH]

Exit status 0 only when every claimed property holds; 1 when one fails; 2 on a usage error.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from .supports import Supports
from .verify import verify_attention


def load(target: str):
    """'package.module:function' (or 'module:Class.method') -> the callable."""
    module_name, sep, attr = target.partition(":")
    if not sep or not attr:
        raise argparse.ArgumentTypeError(f"expected MODULE:FUNCTION; got {target!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    obj = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def parse_head_dims(text: str) -> dict:
    if ":" in text:
        low, high = text.split(":")
        return {"head_dims": (int(low), int(high))}
    values = tuple(int(x) for x in text.split(","))
    return {"head_dims": (min(values), max(values)), "head_dim_values": values}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="verify-attention", description=__doc__.split("\n\n")[0])
    parser.add_argument("forward", help="MODULE:FUNCTION of the forward kernel")
    parser.add_argument("--backward", help="MODULE:FUNCTION of the backward kernel")
    parser.add_argument("--torch", action="store_true", help="the kernel takes torch tensors (autograd if no --backward)")
    parser.add_argument("--layout", choices=("BHSD", "BSHD"), default="BHSD")
    parser.add_argument("--dtype", action="append", dest="dtypes", help="dtype to test (repeatable); default float32 and float64")
    parser.add_argument("--causal", choices=("bottom-right", "top-left", "none"), default="bottom-right")
    parser.add_argument("--no-mask", action="store_true", help="the kernel does not take key_padding_mask")
    parser.add_argument("--no-gqa", action="store_true", help="the kernel needs Hkv == H")
    parser.add_argument("--equal-lengths", action="store_true", help="the kernel needs Nq == Nk")
    parser.add_argument("--head-dims", default="1:64", help="LO:HI or a list D,D,... (default 1:64)")
    parser.add_argument("--no-lse", action="store_true", help="the forward returns out only")
    parser.add_argument("--no-empty-rows", action="store_true", help="rows with no visible key are not supported")
    parser.add_argument("--max-seq", type=int, default=64)
    parser.add_argument("--max-examples", type=int, default=50)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--json", dest="json_path", help="write the report as JSON here")
    parser.add_argument("--reproducer", help="on failure, write a standalone reproducer script here")
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        forward = load(args.forward)
        backward = load(args.backward) if args.backward else None
    except (ImportError, AttributeError, argparse.ArgumentTypeError) as error:
        print(f"verify-attention: cannot load the kernel: {error}", file=sys.stderr)
        return 2
    dtypes = tuple(args.dtypes or ("float32", "float64"))
    supports = Supports(causal=None if args.causal == "none" else args.causal, padding_mask=not args.no_mask,
                        gqa=not args.no_gqa, unequal_lengths=not args.equal_lengths, dtypes=dtypes,
                        returns_lse=not args.no_lse, empty_rows=not args.no_empty_rows,
                        **parse_head_dims(args.head_dims))
    try:
        report = verify_attention(forward, backward, supports=supports, layout=args.layout, dtypes=dtypes,
                                  max_examples=args.max_examples, seed=args.seed, torch=args.torch,
                                  max_seq=args.max_seq)
    except ValueError as error:
        print(f"verify-attention: {error}", file=sys.stderr)
        return 2
    print(report)
    if args.json_path:
        report.to_json(args.json_path)
    if args.reproducer and not report.ok:
        path = report.write_reproducer(args.reproducer)
        print(f"\nreproducer written to {path}: python {path}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
