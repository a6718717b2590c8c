"""Matrix product on the CPU, side by side: the Numba blocked kernel vs NumPy (OpenBLAS).

    python benchmarks/bench_matmul_cpu.py           # full run, writes results/matmul_cpu.{json,md}
    python benchmarks/bench_matmul_cpu.py --quick   # n = 256 and 1024, two rounds, prints only

Square n x n products, n = 256 ... 2048, float32 and float64, 2 threads each, each library in its
own process, alternated A B A B with medians of per-round ratios; every size is validated first
(max |c - a b| / (|a| |b|) against float64). The machine's FMA peak is measured with register-only
FMA chains on the same 2 threads (2 flop per FMA).
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
WORKER = os.path.join(HERE, "workers", "matmul_worker.py")
LIBRARIES = ("numba", "numpy")


def measure(workers, n, dtype, rounds):
    entry = dict(n=n, dtype=dtype, gflop=2.0 * n ** 3 / 1e9, libraries={})
    for name, worker in workers.items():
        worker.call("setup", n=n, dtype=dtype)
        entry["libraries"][name] = dict(max_rel_error=worker.call("validate")["max_rel_error"], seconds=[])
    for _ in range(rounds):
        for name, worker in workers.items():
            entry["libraries"][name]["seconds"].append(worker.call("time")["seconds"])
    for result in entry["libraries"].values():
        result["median_s"] = median(result["seconds"])
        result["gflops"] = entry["gflop"] / result["median_s"]
    numba, numpy = entry["libraries"]["numba"]["seconds"], entry["libraries"]["numpy"]["seconds"]
    entry["numba_vs_numpy"] = median([u / t for t, u in zip(numba, numpy)])   # > 1: numba faster
    return entry


def markdown(results) -> str:
    machine = results["machine"]
    peaks = results["peak_gflops"]
    lines = [
        "# Matrix product on the CPU: Numba blocked kernel vs NumPy (OpenBLAS)", "",
        f"Machine: {machine['cpu_model']}, {machine['logical_cpus']} logical CPUs "
        f"({', '.join(machine['simd'])}), {machine['memory_gib']} GiB; Python {machine['python']}.",
        f"Threads: {machine['threads_per_library']} for every library "
        f"({', '.join(f'{k}={v}' for k, v in machine['thread_variables'].items())}).",
        "Libraries: " + "; ".join(f"{w['library']}: " + ", ".join(f"{k}={v}" for k, v in w.items() if k != "library")
                                  for w in results["workers"]),
        f"Measured FMA peak on 2 threads (register-only FMA chains): float32 {peaks['float32']:.0f} GFLOP/s, "
        f"float64 {peaks['float64']:.0f} GFLOP/s.", "",
        "Square n x n. Time = median over alternating rounds; ratio = median of per-round "
        "(numpy time / numba time), i.e. Numba's speed as a fraction of OpenBLAS; "
        "err = max |c - ab| / (|a||b|) vs float64.", "",
        "| dtype | n | numba ms | numpy ms | numba GFLOP/s | numpy GFLOP/s | numba / OpenBLAS | numba % of peak "
        "| err numba / numpy |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for e in results["entries"]:
        lib = e["libraries"]
        lines.append(
            f"| {e['dtype']} | {e['n']} | {lib['numba']['median_s'] * 1e3:.2f} | {lib['numpy']['median_s'] * 1e3:.2f} "
            f"| {lib['numba']['gflops']:.1f} | {lib['numpy']['gflops']:.1f} | {e['numba_vs_numpy']:.2f}x "
            f"| {100 * lib['numba']['gflops'] / peaks[e['dtype']]:.0f}% "
            f"| {lib['numba']['max_rel_error']:.1e} / {lib['numpy']['max_rel_error']:.1e} |")
    lines += ["", f"Total benchmark wall time: {results['wall_s']:.0f} s.", ""]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="n = 256 and 1024, two rounds, print only")
    args = parser.parse_args(argv)
    sizes = [256, 1024] if args.quick else [256, 512, 1024, 1536, 2048]
    start = time.perf_counter()
    workers = {name: Worker(WORKER, name) for name in LIBRARIES}
    try:
        results = dict(machine=machine_info(), workers=[w.call("info") for w in workers.values()], entries=[])
        results["peak_gflops"] = {d: workers["numba"].call("peak", dtype=d)["gflops"] for d in ("float32", "float64")}
        print(json.dumps(results["machine"]), json.dumps(results["peak_gflops"]), flush=True)
        for dtype in ("float32", "float64"):
            for n in sizes:
                rounds = 2 if args.quick else (7 if n <= 1024 else 5)
                entry = measure(workers, n, dtype, rounds)
                results["entries"].append(entry)
                lib = entry["libraries"]
                print(f"{dtype} n={n:5d} " + "  ".join(
                    f"{name} {r['median_s'] * 1e3:8.2f} ms {r['gflops']:6.1f} GFLOP/s err {r['max_rel_error']:.1e}"
                    for name, r in lib.items()) + f"  numba/OpenBLAS {entry['numba_vs_numpy']:.2f}x", flush=True)
    finally:
        for worker in workers.values():
            worker.close()
    results["wall_s"] = time.perf_counter() - start
    table = markdown(results)
    print(table)
    if not args.quick:
        os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
        with open(os.path.join(HERE, "results", "matmul_cpu.json"), "w") as out:
            json.dump(results, out, indent=1)
        with open(os.path.join(HERE, "results", "matmul_cpu.md"), "w") as out:
            out.write(table)


if __name__ == "__main__":
    main()
