"""GPT training throughput: minilm (NumPy reference and Numba attention) vs the same model in
PyTorch CPU eager, tokens/s as ratios measured side by side (issue 4).

    python benchmarks/bench_gpt_train.py [--rounds 5] [--threads 2] [--quick]

Model: context 128, batch 16, d_model 256, 4 heads, 4 layers, vocab 96, AdamW, float32.
Each variant runs in its own process; variants alternate within every round; the ratio is the
median over rounds of minilm_tokens_per_s / torch_tokens_per_s. Goals: >= 0.7x on the NumPy
backend, >= 1.0x with the fastest CPU backend.
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.harness import alternate, machine_info, write_results  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rounds = 2 if args.quick else args.rounds
    steps = "3" if args.quick else "8"
    variants = {"torch": ["--lib", "torch", "--steps", steps],
                "minilm-reference": ["--lib", "minilm", "--backend", "reference", "--steps", steps],
                "minilm-numba": ["--lib", "minilm", "--backend", "numba", "--steps", steps]}
    runs = alternate("gpt_train_worker.py", variants, rounds, args.threads)
    rows, results = [], {}
    for name in variants:
        tps = statistics.median(r["tokens_per_second"] for r in runs[name])
        ratio = statistics.median(r["tokens_per_second"] / t["tokens_per_second"]
                                  for r, t in zip(runs[name], runs["torch"]))
        first = runs[name][0]["first_loss"]
        results[name] = {"tokens_per_second": tps, "ratio_vs_torch": ratio, "first_loss": first,
                         "per_round_tokens_per_second": [r["tokens_per_second"] for r in runs[name]]}
        rows.append(f"| {name} | {tps:,.0f} | {ratio:.2f}x | {first:.3f} |")
        print(rows[-1], flush=True)
    m = machine_info(args.threads)
    markdown = "\n".join([
        "# GPT training throughput: minilm vs PyTorch CPU eager", "",
        f"Machine: {m['cpu']}, {m['logical_cores']} logical cores, {m['threads']} threads per library; "
        f"Python {m['python']}, numpy {m['numpy']}, torch {m['torch']}, numba {m['numba']}.",
        "Model: context 128, batch 16, d_model 256, 4 heads, 4 layers, vocab 96; AdamW; float32. "
        f"Each variant in its own process, alternated, {rounds} rounds; median of per-step times (after a warm-up "
        "step); ratio = median of per-round tokens/s ratios vs torch (higher is better).", "",
        "| variant | tokens/s | vs torch | first loss (ln 96 = 4.564) |", "|---|---|---|---|", *rows, ""])
    write_results("gpt_train", {"machine": m, "rounds": rounds, "results": results}, markdown)
    print(markdown)


if __name__ == "__main__":
    main()
