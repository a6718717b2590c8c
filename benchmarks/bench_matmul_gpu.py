"""Matrix product on a CUDA GPU, side by side in one process: the Triton tiled kernel
(kernels.gpu.matmul) vs cuBLAS through torch.matmul.

    python benchmarks/bench_matmul_gpu.py            # full sweep, writes results/matmul_gpu.{json,md}
    python benchmarks/bench_matmul_gpu.py --quick    # n = 1024 and 4096, bf16 only, prints only
    python benchmarks/bench_matmul_gpu.py --dry-run  # no GPU: tiny sizes through Triton's interpreter,
                                                     # to exercise this script's code paths (times meaningless)

Square n x n products, n = 1024 ... 8192, bf16, fp16 and fp32 (fp32 as tf32 on both sides:
torch.backends.cuda.matmul.allow_tf32 is switched on for the comparison, and Triton's default
input_precision is "tf32"). Times from triton.testing.do_bench (median) in alternating rounds;
ratio = median of per-round cuBLAS/Triton times (> 1: Triton faster). Each size is validated
before timing: max |triton - torch| / max |torch| printed beside the speed.
Goal (issue 7, H100): >= 0.9x cuBLAS for n >= 4096.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="n = 1024 and 4096, bf16 only, no files written")
    parser.add_argument("--dry-run", action="store_true",
                        help="no GPU needed: tiny sizes through TRITON_INTERPRET=1 (checks the script, not speed)")
    parser.add_argument("--rounds", type=int, default=None, help="alternating rounds per size (default 3, quick 1)")
    parser.add_argument("--out", default=None, help="results folder (default benchmarks/results; dry runs write nothing)")
    return parser.parse_args(argv)


def setup_mode(args):
    """Fix the Triton mode before kernels.gpu is imported; exit with a clear message without a GPU."""
    if args.dry_run:
        os.environ["TRITON_INTERPRET"] = "1"
    try:
        import torch
        import triton  # noqa: F401
    except ImportError as error:
        sys.exit(f"bench_matmul_gpu: needs torch and triton ({error}); install the GPU extra: "
                 "pip install 'minilm[gpu]'")
    if not args.dry_run:
        if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
            sys.exit("bench_matmul_gpu: TRITON_INTERPRET is set; unset it to time compiled kernels "
                     "(or pass --dry-run to exercise the script through the interpreter)")
        if not torch.cuda.is_available():
            sys.exit("bench_matmul_gpu: no CUDA GPU is visible; this benchmark needs one "
                     "(run with --dry-run to check the script through Triton's interpreter on the CPU)")
        torch.backends.cuda.matmul.allow_tf32 = True          # compare tf32 with tf32
    sys.path.insert(0, str(ROOT))


def device_info(dry_run: bool) -> dict:
    import torch
    import triton
    info = {"python": platform.python_version(), "torch": torch.__version__, "triton": triton.__version__,
            "cuda": torch.version.cuda, "platform": platform.platform(), "dry_run": dry_run}
    if not dry_run:
        props = torch.cuda.get_device_properties(torch.cuda.current_device())
        info.update(gpu=props.name, capability=f"{props.major}.{props.minor}", sms=props.multi_processor_count,
                    memory_gib=round(props.total_memory / 2**30, 1))
    else:
        info.update(gpu="none (Triton interpreter on the CPU)")
    return info


def cases(args):
    if args.dry_run:
        return [(n, dtype) for n in (33, 64) for dtype in ("float16", "bfloat16", "float32")]
    if args.quick:
        return [(n, "bfloat16") for n in (1024, 4096)]
    return [(n, dtype) for dtype in ("bfloat16", "float16", "float32") for n in (1024, 2048, 4096, 6144, 8192)]


def make_timer(dry_run: bool):
    if dry_run:
        def wall(fn):
            start = time.perf_counter()
            fn()
            return (time.perf_counter() - start) * 1e3
        return wall
    from triton.testing import do_bench

    def bench(fn):
        result = do_bench(fn, warmup=25, rep=100, quantiles=[0.5])
        return result[0] if isinstance(result, (list, tuple)) else float(result)
    return bench


def measure(n, dtype_name, rounds, timer, device):
    import torch

    from kernels.gpu.matmul import matmul_into
    dtype = getattr(torch, dtype_name)
    gen = torch.Generator(device=device).manual_seed(n)
    a = torch.randn((n, n), generator=gen, device=device, dtype=dtype)
    b = torch.randn((n, n), generator=gen, device=device, dtype=dtype)
    out = torch.empty((n, n), device=device, dtype=dtype)
    ours = lambda: matmul_into(a, b, out, "tf32")
    theirs = lambda: torch.matmul(a, b)
    ours()                                                              # validate (and autotune) first
    expected = theirs()
    rel_error = float((out.float() - expected.float()).abs().max() / expected.float().abs().max())
    ours_ms, theirs_ms = [], []
    for _ in range(rounds):
        ours_ms.append(timer(ours))
        theirs_ms.append(timer(theirs))
    flop = 2.0 * n ** 3
    triton_ms, torch_ms = statistics.median(ours_ms), statistics.median(theirs_ms)
    return dict(n=n, dtype=dtype_name, rel_error_vs_torch=rel_error, triton_ms=triton_ms, torch_ms=torch_ms,
                triton_tflops=flop / triton_ms / 1e9, torch_tflops=flop / torch_ms / 1e9,
                ratio=statistics.median(t / o for o, t in zip(ours_ms, theirs_ms)))


def to_markdown(info, entries, summary) -> str:
    lines = ["# Matrix product on a GPU: Triton tiled kernel vs cuBLAS (torch.matmul)", "",
             f"Device: {info.get('gpu')} (compute capability {info.get('capability')}, {info.get('sms')} SMs); "
             f"torch {info['torch']}, triton {info['triton']}, CUDA {info['cuda']}, Python {info['python']}.",
             "Square n×n; fp32 runs as tf32 on both sides. do_bench medians over alternating rounds; "
             "ratio = median of per-round cuBLAS/Triton (> 1: Triton faster); error = max|Δ| / max|torch|.", "",
             "| dtype | n | Triton ms | cuBLAS ms | Triton TFLOP/s | cuBLAS TFLOP/s | ratio | rel. error |",
             "|---|---|---|---|---|---|---|---|"]
    for e in entries:
        lines.append(f"| {e['dtype']} | {e['n']} | {e['triton_ms']:.3f} | {e['torch_ms']:.3f} | "
                     f"{e['triton_tflops']:.1f} | {e['torch_tflops']:.1f} | {e['ratio']:.2f}x | "
                     f"{e['rel_error_vs_torch']:.1e} |")
    return "\n".join(lines) + "\n\n" + "\n".join(f"- {line}" for line in summary) + "\n"


def main(argv=None):
    args = parse_args(argv)
    setup_mode(args)
    device = "cpu" if args.dry_run else "cuda"
    rounds = args.rounds or (1 if args.quick or args.dry_run else 3)
    info = device_info(args.dry_run)
    timer = make_timer(args.dry_run)
    print(f"device: {info['gpu']}; torch {info['torch']}, triton {info['triton']}; rounds={rounds}", flush=True)
    started = time.time()
    entries = []
    for n, dtype in cases(args):
        entry = measure(n, dtype, rounds, timer, device)
        entries.append(entry)
        print(f"  {dtype:8} n={n:5d}: triton {entry['triton_ms']:8.3f} ms {entry['triton_tflops']:6.1f} TFLOP/s | "
              f"cublas {entry['torch_ms']:8.3f} ms {entry['torch_tflops']:6.1f} | ratio {entry['ratio']:.2f}x | "
              f"rel err {entry['rel_error_vs_torch']:.1e}", flush=True)
    min_n = 1 if args.dry_run else 4096
    big = [e for e in entries if e["n"] >= min_n]
    summary = ([f"n >= {min_n}: min ratio {min(e['ratio'] for e in big):.2f}x, median "
                f"{statistics.median(e['ratio'] for e in big):.2f}x vs cuBLAS (goal >= 0.9x)"]
               if big else ["(no n >= 4096 in this run: goal not checked)"])
    print("\n".join(summary))
    from kernels.gpu.tuning import chosen_configs
    payload = dict(device=info, rounds=rounds, wall_s=round(time.time() - started, 1), entries=entries,
                   goals=summary, autotuned={" ".join(map(str, k)): v for k, v in chosen_configs().items()})
    out_dir = Path(args.out) if args.out else (None if (args.dry_run or args.quick) else RESULTS)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "matmul_gpu.json").write_text(json.dumps(payload, indent=2) + "\n")
        (out_dir / "matmul_gpu.md").write_text(to_markdown(info, entries, summary))
        print(f"wrote {out_dir / 'matmul_gpu.json'} and .md")
    bad = [e for e in entries if not e["rel_error_vs_torch"] < 2e-2]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
