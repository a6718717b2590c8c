"""Engine overhead: minilm vs PyTorch CPU eager on the same work, as ratios (issue 2).

    python benchmarks/bench_engine.py [--rounds 7] [--threads 2] [--quick]

Each library runs in its own process (never both in one), alternated A B A B; the ratio reported
is the median over rounds of minilm_time / torch_time (lower is better; 1.0 = as fast as torch).
Goals: MLP step within 1.5x of PyTorch; the 1,000-small-op chain within 3x.
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.harness import alternate, machine_info, median_ratio, write_results  # noqa: E402

GOALS = {"chain": 3.0, "mlp": 1.5}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="3 rounds, fewer iterations (smoke run)")
    args = parser.parse_args()
    rounds = 3 if args.quick else args.rounds
    iters = "10" if args.quick else "30"
    rows, payload = [], {"machine": machine_info(args.threads), "rounds": rounds, "results": {}}
    for work in ("chain", "mlp"):
        variants = {lib: ["--lib", lib, "--work", work, "--iters", iters] for lib in ("minilm", "torch")}
        runs = alternate("engine_worker.py", variants, rounds, args.threads)
        loss_gap = abs(runs["minilm"][0]["first_loss"] - runs["torch"][0]["first_loss"])
        ratio = median_ratio(runs["minilm"], runs["torch"])
        ours = statistics.median(r["seconds"] for r in runs["minilm"])
        theirs = statistics.median(r["seconds"] for r in runs["torch"])
        payload["results"][work] = {"minilm_seconds": ours, "torch_seconds": theirs, "ratio": ratio,
                                    "goal": GOALS[work], "first_loss_abs_diff": loss_gap,
                                    "per_round_ratios": [m["seconds"] / t["seconds"] for m, t in
                                                         zip(runs["minilm"], runs["torch"])]}
        rows.append(f"| {work} | {ours * 1e3:.3f} | {theirs * 1e3:.3f} | {ratio:.2f}x | {GOALS[work]}x | "
                    f"{'met' if ratio <= GOALS[work] else 'not met'} | {loss_gap:.1e} |")
        print(rows[-1], flush=True)
    m = payload["machine"]
    markdown = "\n".join([
        "# Engine overhead: minilm vs PyTorch CPU eager", "",
        f"Machine: {m['cpu']}, {m['logical_cores']} logical cores, {m['threads']} threads per library; "
        f"Python {m['python']}, numpy {m['numpy']}, torch {m['torch']}.",
        f"Each library in its own process, alternated, {rounds} rounds; ratio = median of per-round "
        "minilm/torch time ratios (lower is better).", "",
        "| work | minilm ms | torch ms | ratio | goal | | loss diff |", "|---|---|---|---|---|---|---|",
        *rows, "",
        "chain = 1,000 small ops (500 x (mul, add)) on a (16,) vector + sum + backward; "
        "mlp = one SGD step of a 2-layer MLP on 256x256 float32 matrices.", ""])
    write_results("engine", payload, markdown)
    print(markdown)


if __name__ == "__main__":
    main()
