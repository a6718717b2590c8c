"""Attention on a CUDA GPU, side by side in one process: the Triton flash kernels (kernels.gpu)
vs torch.nn.functional.scaled_dot_product_attention with the flash backend.

    python benchmarks/bench_attention_gpu.py            # full sweep, writes results/attention_gpu.{json,md}
    python benchmarks/bench_attention_gpu.py --quick    # a few shapes, bf16 only, prints only
    python benchmarks/bench_attention_gpu.py --dry-run  # no GPU: tiny shapes through Triton's interpreter,
                                                        # to exercise this script's code paths (times meaningless)

Sweep: batch 4, (heads, head dim) = (32, 64) and (16, 128), N = 1k ... 16k, causal and not, bf16
and fp16; forward and forward+backward. Times from triton.testing.do_bench (median), taken in
alternating rounds Triton / SDPA; the ratio is the median of per-round ratios (> 1: Triton
faster). FLOPs: forward 4 B H N^2 D (halved when causal), backward 2.5x the forward. Every shape
is validated before it is timed: max |triton - sdpa| over the whole output (and gradients), and
max error of batch 0, heads 0-1 against an fp32 SDPA, printed beside the speed.
Goals (issue 7, H100): forward >= 1.0x SDPA and >= 45% of the 989 TFLOP/s bf16 peak;
forward+backward >= 0.9x.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}      # dense bf16/fp16 tensor peaks


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few shapes, bf16 only, no files written")
    parser.add_argument("--dry-run", action="store_true",
                        help="no GPU needed: tiny shapes through TRITON_INTERPRET=1 (checks the script, not speed)")
    parser.add_argument("--rounds", type=int, default=None, help="alternating rounds per shape (default 3, quick 1)")
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
        sys.exit(f"bench_attention_gpu: needs torch and triton ({error}); install the GPU extra: "
                 "pip install 'minilm[gpu]'")
    if not args.dry_run:
        if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
            sys.exit("bench_attention_gpu: TRITON_INTERPRET is set; unset it to time compiled kernels "
                     "(or pass --dry-run to exercise the script through the interpreter)")
        if not torch.cuda.is_available():
            sys.exit("bench_attention_gpu: no CUDA GPU is visible; this benchmark needs one "
                     "(run with --dry-run to check the script through Triton's interpreter on the CPU)")
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


def peak_for(gpu_name: str):
    return next((peak for key, peak in PEAK_TFLOPS.items() if key in gpu_name), None)


def shapes(args):
    """(batch, heads, head_dim, N, causal, dtype) to run."""
    if args.dry_run:
        return [(1, 2, 16, 33, causal, "float16") for causal in (False, True)] + [(1, 2, 24, 20, True, "bfloat16")]
    if args.quick:
        return [(4, 16, 128, n, causal, "bfloat16") for n in (1024, 4096) for causal in (False, True)]
    return [(4, heads, dim, n, causal, dtype)
            for dtype in ("bfloat16", "float16")
            for heads, dim in ((32, 64), (16, 128))
            for n in (1024, 2048, 4096, 8192, 16384)
            for causal in (False, True)]


def make_timer(dry_run: bool):
    """Median milliseconds of fn(): do_bench on a GPU, a wall clock under the interpreter."""
    if dry_run:
        def wall(fn, grad_to_none=None):
            times = []
            for _ in range(2):
                start = time.perf_counter()
                fn()
                times.append((time.perf_counter() - start) * 1e3)
            return statistics.median(times)
        return wall
    from triton.testing import do_bench

    def bench(fn, grad_to_none=None):
        result = do_bench(fn, warmup=25, rep=100, grad_to_none=grad_to_none, quantiles=[0.5])
        return result[0] if isinstance(result, (list, tuple)) else float(result)
    return bench


def max_abs(a, b) -> float:
    return float((a.detach().float() - b.detach().float()).abs().max())


def measure(batch, heads, head_dim, n, causal, dtype_name, rounds, timer, device):
    import torch
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from kernels.gpu.attention_bwd import flash_attention_backward
    from kernels.gpu.attention_fwd import flash_attention_forward

    dtype = getattr(torch, dtype_name)
    scale = 1.0 / math.sqrt(head_dim)
    gen = torch.Generator(device=device).manual_seed(n * 7 + head_dim)
    make = lambda: torch.randn((batch, heads, n, head_dim), generator=gen, device=device, dtype=dtype)
    q, k, v, dout = make(), make(), make(), make()
    backend = SDPBackend.MATH if device == "cpu" else SDPBackend.FLASH_ATTENTION

    def triton_fwd():
        return flash_attention_forward(q, k, v, None, causal, scale)

    def triton_fwd_bwd():
        out, lse = flash_attention_forward(q, k, v, None, causal, scale)
        return flash_attention_backward(dout, q, k, v, out, lse, None, causal, scale)

    qg, kg, vg = (x.detach().clone().requires_grad_(True) for x in (q, k, v))

    def sdpa_fwd():
        with sdpa_kernel(backend):
            return F.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=scale)

    def sdpa_fwd_bwd():
        with sdpa_kernel(backend):
            out = F.scaled_dot_product_attention(qg, kg, vg, is_causal=causal, scale=scale)
        out.backward(dout)
        return out

    # validate before timing (this also runs the autotuner once per kernel)
    out, lse = triton_fwd()
    dq, dk, dv = flash_attention_backward(dout, q, k, v, out, lse, None, causal, scale)
    for x in (qg, kg, vg):
        x.grad = None
    sdpa_out = sdpa_fwd_bwd()
    errors = dict(out_vs_sdpa=max_abs(out, sdpa_out), dq_vs_sdpa=max_abs(dq, qg.grad),
                  dk_vs_sdpa=max_abs(dk, kg.grad), dv_vs_sdpa=max_abs(dv, vg.grad))
    sub = lambda x: x[:1, :2].float()                                 # batch 0, heads 0-1, in fp32
    exact = F.scaled_dot_product_attention(sub(q), sub(k), sub(v), is_causal=causal, scale=scale)
    errors["out_vs_fp32"] = max_abs(sub(out), exact)
    errors["sdpa_out_vs_fp32"] = max_abs(sub(sdpa_out.detach()), exact)
    finite = all(math.isfinite(e) for e in errors.values())

    flop_fwd = 4.0 * batch * heads * n * n * head_dim * (0.5 if causal else 1.0)
    entry = dict(batch=batch, heads=heads, head_dim=head_dim, n=n, causal=causal, dtype=dtype_name,
                 errors=errors, valid=finite, passes={})
    for name, flop, ours, theirs, grads in (("fwd", flop_fwd, triton_fwd, sdpa_fwd, None),
                                            ("fwd+bwd", 3.5 * flop_fwd, triton_fwd_bwd, sdpa_fwd_bwd, [qg, kg, vg])):
        ours_ms, theirs_ms = [], []
        for _ in range(rounds):                                       # alternate A B A B
            ours_ms.append(timer(ours))
            theirs_ms.append(timer(theirs, grad_to_none=grads))
        triton_ms, sdpa_ms = statistics.median(ours_ms), statistics.median(theirs_ms)
        entry["passes"][name] = dict(
            triton_ms=triton_ms, sdpa_ms=sdpa_ms,
            triton_tflops=flop / triton_ms / 1e9, sdpa_tflops=flop / sdpa_ms / 1e9,
            ratio=statistics.median(s / t for t, s in zip(ours_ms, theirs_ms)))     # > 1: Triton faster
    return entry


def to_markdown(info, entries, peak) -> str:
    lines = ["# Attention on a GPU: Triton flash kernels vs torch SDPA (flash backend)", "",
             f"Device: {info.get('gpu')} (compute capability {info.get('capability')}, {info.get('sms')} SMs); "
             f"torch {info['torch']}, triton {info['triton']}, CUDA {info['cuda']}, Python {info['python']}.",
             "Times: triton.testing.do_bench medians over alternating rounds; ratio = median of per-round "
             "SDPA/Triton (> 1: Triton faster). FLOPs: fwd 4·B·H·N²·D (½ causal), bwd 2.5× fwd.",
             "Errors: max |Triton − SDPA| of out (and dq) in the run dtype; out vs fp32 for batch 0, heads 0–1 "
             "(SDPA's own error beside it).", "",
             "| dtype | H | D | N | causal | pass | Triton ms | SDPA ms | Triton TFLOP/s | SDPA TFLOP/s | ratio |"
             + (" % peak |" if peak else "") + " err out/dq vs SDPA | err out vs fp32 (SDPA) |",
             "|---|---|---|---|---|---|---|---|---|---|---|" + ("---|" if peak else "") + "---|---|"]
    for e in entries:
        for name, p in e["passes"].items():
            err = e["errors"]
            row = (f"| {e['dtype']} | {e['heads']} | {e['head_dim']} | {e['n']} | {'yes' if e['causal'] else 'no'} "
                   f"| {name} | {p['triton_ms']:.3f} | {p['sdpa_ms']:.3f} | {p['triton_tflops']:.1f} "
                   f"| {p['sdpa_tflops']:.1f} | {p['ratio']:.2f}x |")
            if peak:
                row += f" {100 * p['triton_tflops'] / peak:.0f}% |"
            row += (f" {err['out_vs_sdpa']:.1e} / {err['dq_vs_sdpa']:.1e} "
                    f"| {err['out_vs_fp32']:.1e} ({err['sdpa_out_vs_fp32']:.1e}) |")
            lines.append(row)
    return "\n".join(lines) + "\n"


def goals(entries, peak, min_n: int = 4096) -> list[str]:
    """The issue's goals, checked on shapes with N >= min_n (long sequences)."""
    notes = []
    long = [e for e in entries if e["n"] >= min_n]
    if not long:
        return [f"(no N >= {min_n} shapes in this run: goals not checked)"]
    fwd = [e["passes"]["fwd"] for e in long]
    both = [e["passes"]["fwd+bwd"] for e in long]
    notes.append(f"forward vs SDPA: min {min(p['ratio'] for p in fwd):.2f}x, "
                 f"median {statistics.median(p['ratio'] for p in fwd):.2f}x (goal >= 1.0x)")
    notes.append(f"forward+backward vs SDPA: min {min(p['ratio'] for p in both):.2f}x, "
                 f"median {statistics.median(p['ratio'] for p in both):.2f}x (goal >= 0.9x)")
    if peak:
        best = max(p["triton_tflops"] for p in fwd)
        notes.append(f"forward best {best:.0f} TFLOP/s = {100 * best / peak:.0f}% of {peak:.0f} (goal >= 45%)")
    return notes


def main(argv=None):
    args = parse_args(argv)
    setup_mode(args)
    import torch
    device = "cpu" if args.dry_run else "cuda"
    rounds = args.rounds or (1 if args.quick or args.dry_run else 3)
    info = device_info(args.dry_run)
    peak = None if args.dry_run else peak_for(info["gpu"])
    timer = make_timer(args.dry_run)
    print(f"device: {info['gpu']}; torch {info['torch']}, triton {info['triton']}; rounds={rounds}", flush=True)
    started = time.time()
    entries = []
    for batch, heads, head_dim, n, causal, dtype in shapes(args):
        try:
            entry = measure(batch, heads, head_dim, n, causal, dtype, rounds, timer, device)
        except torch.cuda.OutOfMemoryError as error:          # noqa: PERF203 - report and go on
            print(f"  {dtype} H={heads} D={head_dim} N={n} causal={causal}: out of memory ({error})", flush=True)
            torch.cuda.empty_cache()
            continue
        entries.append(entry)
        err = entry["errors"]
        for name, p in entry["passes"].items():
            print(f"  {dtype} H={heads} D={head_dim} N={n:5d} causal={causal!s:5} {name:7}: "
                  f"triton {p['triton_ms']:8.3f} ms {p['triton_tflops']:6.1f} TFLOP/s | sdpa {p['sdpa_ms']:8.3f} ms "
                  f"{p['sdpa_tflops']:6.1f} | ratio {p['ratio']:.2f}x | err out {err['out_vs_sdpa']:.1e} "
                  f"dq {err['dq_vs_sdpa']:.1e} vs fp32 {err['out_vs_fp32']:.1e} "
                  f"(sdpa {err['sdpa_out_vs_fp32']:.1e})", flush=True)
        if not entry["valid"]:
            print("  !! non-finite error: the kernel output is wrong for this shape", flush=True)
    summary = goals(entries, peak, min_n=1 if args.dry_run else 4096)
    for line in summary:
        print(line)
    from kernels.gpu.tuning import chosen_configs
    payload = dict(device=info, peak_tflops=peak, rounds=rounds, wall_s=round(time.time() - started, 1),
                   entries=entries, goals=summary,
                   autotuned={" ".join(map(str, key)): value for key, value in chosen_configs().items()})
    out_dir = Path(args.out) if args.out else (None if (args.dry_run or args.quick) else RESULTS)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "attention_gpu.json").write_text(json.dumps(payload, indent=2) + "\n")
        (out_dir / "attention_gpu.md").write_text(to_markdown(info, entries, peak) + "\n" +
                                                  "\n".join(f"- {line}" for line in summary) + "\n")
        print(f"wrote {out_dir / 'attention_gpu.json'} and .md")
    return 0 if all(e["valid"] for e in entries) else 1


if __name__ == "__main__":
    sys.exit(main())
