"""Attention on the CPU, side by side: Numba flash kernels vs the NumPy reference vs PyTorch SDPA.

    python benchmarks/bench_attention_cpu.py           # full run, writes results/attention_cpu.{json,md}
    python benchmarks/bench_attention_cpu.py --quick   # N = 256, 1024, two rounds, prints only

fp32, B=1, H=8, D=64, N = 256 ... 4096, causal and not, forward and forward+backward. Each
library runs in its own process with 2 threads; every shape is first validated (max relative
error of head 0 against the float64 reference) and its peak extra memory is measured (in a
second process per library whose glibc returns freed memory at once, see protocol.py), then
the libraries are timed in alternation (with a 0.25 s pause before each call) A B C, A B C, ... and the speed-ups quoted are medians of
the per-round ratios. GFLOP/s counts 4 N^2 D H for the forward, half that when causal, and 2.5x
the forward for forward+backward.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "workers"))
from protocol import Worker, machine_info, median  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, "workers", "attention_worker.py")
LIBRARIES = ("numba", "torch", "reference")
HEADS, HEAD_DIM = 8, 64


def flops(n: int, causal: bool, mode: str) -> float:
    forward = 4.0 * n * n * HEAD_DIM * HEADS * (0.5 if causal else 1.0)
    return forward * (2.5 if mode == "fwdbwd" else 1.0)


def rounds_for(n: int, quick: bool) -> int:
    if quick:
        return 2
    return 7 if n <= 1024 else 5 if n <= 2048 else 3


def measure(workers, memory_workers, n, causal, mode, rounds):
    entry = dict(n=n, causal=causal, mode=mode, gflop=flops(n, causal, mode) / 1e9, libraries={})
    for name, worker in workers.items():
        memory_workers[name].call("setup", n=n, causal=causal, mode=mode)
        peak = memory_workers[name].call("memory")["peak_extra_bytes"]
        memory_workers[name].call("setup", n=1, causal=causal, mode=mode)      # free the inputs
        worker.call("setup", n=n, causal=causal, mode=mode)
        error = worker.call("validate")["max_rel_error"]
        entry["libraries"][name] = dict(max_rel_error=error, peak_extra_mib=peak / 2**20, seconds=[])
    for _ in range(rounds):
        for name, worker in workers.items():                       # A B C, A B C, ...
            entry["libraries"][name]["seconds"].append(worker.call("time")["seconds"])
    numba_times = entry["libraries"]["numba"]["seconds"]
    for name, result in entry["libraries"].items():
        result["median_s"] = median(result["seconds"])
        result["gflops"] = entry["gflop"] / result["median_s"]
        if name != "numba":
            result["numba_speedup"] = median([t / u for t, u in zip(result["seconds"], numba_times)])
    return entry


def markdown(results) -> str:
    machine = results["machine"]
    lines = [
        "# Attention on the CPU: Numba flash kernels vs PyTorch SDPA vs the NumPy reference", "",
        f"Machine: {machine['cpu_model']}, {machine['logical_cpus']} logical CPUs "
        f"({', '.join(machine['simd'])}), {machine['memory_gib']} GiB; Python {machine['python']}.",
        f"Threads: {machine['threads_per_library']} for every library "
        f"({', '.join(f'{k}={v}' for k, v in machine['thread_variables'].items())}, torch.set_num_threads).",
        "Libraries: " + "; ".join(f"{w['library']}: " + ", ".join(f"{k}={v}" for k, v in w.items() if k != "library")
                                  for w in results["workers"]),
        "", "fp32, B=1, H=8, D=64. Time = median over alternating rounds; speed-up = median of per-round "
        "ratios (other / numba, >1 means Numba is faster); peak = extra resident memory of one call "
        "(outputs included); err = max relative error of head 0 vs the float64 reference.", "",
        "| N | causal | pass | numba ms | torch ms | ref ms | numba GFLOP/s | torch GFLOP/s | vs torch | vs ref "
        "| peak MiB numba / torch / ref | err numba / torch / ref |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for e in results["entries"]:
        lib = e["libraries"]
        lines.append(
            f"| {e['n']} | {'yes' if e['causal'] else 'no'} | {'fwd+bwd' if e['mode'] == 'fwdbwd' else 'fwd'} "
            f"| {lib['numba']['median_s'] * 1e3:.1f} | {lib['torch']['median_s'] * 1e3:.1f} "
            f"| {lib['reference']['median_s'] * 1e3:.1f} | {lib['numba']['gflops']:.1f} | {lib['torch']['gflops']:.1f} "
            f"| {lib['torch']['numba_speedup']:.2f}x | {lib['reference']['numba_speedup']:.2f}x "
            f"| {lib['numba']['peak_extra_mib']:.0f} / {lib['torch']['peak_extra_mib']:.0f} / "
            f"{lib['reference']['peak_extra_mib']:.0f} "
            f"| {lib['numba']['max_rel_error']:.1e} / {lib['torch']['max_rel_error']:.1e} / "
            f"{lib['reference']['max_rel_error']:.1e} |")
    lines += ["", f"Total benchmark wall time: {results['wall_s']:.0f} s.", ""]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="N = 256 and 1024, two rounds, print only")
    parser.add_argument("--sizes", type=int, nargs="*", help="override the sequence lengths")
    args = parser.parse_args(argv)
    sizes = args.sizes or ([256, 1024] if args.quick else [256, 512, 1024, 2048, 4096])
    start = time.perf_counter()
    workers = {name: Worker(WORKER, name) for name in LIBRARIES}
    memory_workers = {name: Worker(WORKER, name, for_memory=True) for name in LIBRARIES}
    try:
        results = dict(machine=machine_info(), workers=[w.call("info") for w in workers.values()], entries=[])
        print(json.dumps(results["machine"]), flush=True)
        for info in results["workers"]:
            print(json.dumps(info), flush=True)
        for n in sizes:
            for causal in (False, True):
                for mode in ("fwd", "fwdbwd"):
                    entry = measure(workers, memory_workers, n, causal, mode, rounds_for(n, args.quick))
                    results["entries"].append(entry)
                    lib = entry["libraries"]
                    print(f"N={n:5d} causal={causal!s:5} {mode:6} " + "  ".join(
                        f"{name} {r['median_s'] * 1e3:8.1f} ms {r['gflops']:6.1f} GFLOP/s "
                        f"{r['peak_extra_mib']:7.1f} MiB err {r['max_rel_error']:.1e}" for name, r in lib.items())
                        + f"  numba speed-up vs torch {lib['torch']['numba_speedup']:.2f}x"
                        f" vs ref {lib['reference']['numba_speedup']:.2f}x", flush=True)
    finally:
        for worker in list(workers.values()) + list(memory_workers.values()):
            worker.close()
    results["wall_s"] = time.perf_counter() - start
    table = markdown(results)
    print(table)
    if not args.quick:
        os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
        with open(os.path.join(HERE, "results", "attention_cpu.json"), "w") as out:
            json.dump(results, out, indent=1)
        with open(os.path.join(HERE, "results", "attention_cpu.md"), "w") as out:
            out.write(table)


if __name__ == "__main__":
    main()
