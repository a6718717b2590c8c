"""The `minilm` command (also `python -m minilm`)."""
from __future__ import annotations

import argparse
import sys


def _cmd_demo(args) -> int:
    from .demo import run_demo
    return 0 if run_demo(seed=args.seed) else 1


def _cmd_verify_attention(args, rest) -> int:
    from kernels.testing.cli import main as verify_main
    return verify_main(rest)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minilm", description=__doc__,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="build a small expression, backward, gradcheck report",
                          formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(run=_cmd_demo)
    sub.add_parser("verify-attention", add_help=False,
                   help="verify an attention kernel against the float64 reference (see --help)")
    return parser


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "verify-attention":
        return _cmd_verify_attention(None, argv[1:])
    args = build_parser().parse_args(argv)
    return args.run(args)
