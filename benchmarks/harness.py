"""Fair timing on noisy shared machines (PERFORMANCE_NOTES.md): each library in its own process,
processes alternated A B A B, thread counts fixed and printed, the median of pairwise ratios.

    from benchmarks.harness import machine_info, run_worker, alternate
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


def thread_env(threads: int) -> dict:
    env = dict(os.environ)
    for var in THREAD_VARS:
        env[var] = str(threads)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info(threads: int) -> dict:
    import numpy
    info = {"cpu": cpu_model(), "logical_cores": os.cpu_count(), "threads": threads,
            "python": platform.python_version(), "numpy": numpy.__version__, "platform": platform.platform()}
    for name in ("torch", "numba"):
        try:
            info[name] = __import__(name).__version__
        except ImportError:
            info[name] = None
    return info


def run_worker(script: str, args: list[str], threads: int) -> dict:
    """Run one worker script in a fresh process; it prints one JSON object on its last line."""
    cmd = [sys.executable, str(ROOT / "benchmarks" / "workers" / script), *args, "--threads", str(threads)]
    done = subprocess.run(cmd, env=thread_env(threads), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"worker {' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def alternate(script: str, variants: dict[str, list[str]], rounds: int, threads: int, key: str = "seconds"):
    """Run each variant once per round, in turn; return {variant: [results]} and per-round ratios."""
    results = {name: [] for name in variants}
    for _ in range(rounds):
        for name, args in variants.items():
            results[name].append(run_worker(script, args, threads))
    return results


def median_ratio(numerators: list[dict], denominators: list[dict], key: str = "seconds") -> float:
    return statistics.median(n[key] / d[key] for n, d in zip(numerators, denominators))


def write_results(name: str, payload: dict, markdown: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text(markdown)
