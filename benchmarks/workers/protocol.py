"""The side-by-side benchmark plumbing shared by bench_attention_cpu.py and bench_matmul_cpu.py.

Each library runs in its own worker process (PERFORMANCE_NOTES: idle BLAS/OpenMP threads of one
library steal the second core from another in the same process). The driver talks to the
workers over JSON lines on stdin/stdout and alternates them: A B C, A B C, ... so that every
library sees the same machine conditions, and quotes the median of per-round time ratios.

Worker side: `serve(handlers)` reads {"op": ..., ...} lines and answers one JSON line each.
Driver side: `Worker(script, library)` starts one; `worker.call(op, **args)` returns the answer.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time

THREADS = 2
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


def worker_environment(library: str) -> dict:
    """Every library gets THREADS threads through every knob it reads."""
    env = dict(os.environ)
    for name in THREAD_VARIABLES:
        env[name] = str(THREADS)
    env["PYTHONPATH"] = REPO_ROOT + os.pathsep + env.get("PYTHONPATH", "")
    if library in ("numpy", "reference"):
        # OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE work around old OpenBLAS bugs on some CPUs and slow
        # a current numpy: unset both together, for the numpy worker only (see env README).
        env.pop("OPENBLAS_CORETYPE", None)
        env.pop("OPENBLAS_L2_SIZE", None)
    return env


MEMORY_ENVIRONMENT = {
    # For the memory workers only: glibc returns every block of 64 KiB or more to the system when
    # freed (no adaptive mmap threshold, no retained heap), so the high-water mark after a reset
    # sees each call's true peak, not pages left resident by the call before.
    "MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "65536",
}


class Worker:
    def __init__(self, script: str, library: str, for_memory: bool = False):
        self.library = library
        env = worker_environment(library)
        if for_memory:
            env.update(MEMORY_ENVIRONMENT)
        self.process = subprocess.Popen([sys.executable, script, library], cwd=REPO_ROOT, text=True,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)

    def call(self, op: str, **args):
        self.process.stdin.write(json.dumps(dict(op=op, **args)) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.library} worker died during {op!r} (see its stderr above)")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"{self.library} worker failed in {op!r}: {answer['error']}")
        return answer

    def close(self):
        try:
            self.call("quit")
        except (RuntimeError, BrokenPipeError, OSError):
            pass
        self.process.wait(timeout=30)


def serve(handlers: dict) -> None:
    """Worker loop: answer each JSON command with the handler's dict (or {"error": ...})."""
    for line in sys.stdin:
        command = json.loads(line)
        op = command.pop("op")
        if op == "quit":
            print(json.dumps({"ok": True}), flush=True)
            return
        try:
            answer = handlers[op](**command)
        except Exception as error:  # report to the driver rather than dying silently
            import traceback
            traceback.print_exc(file=sys.stderr)
            answer = {"error": f"{type(error).__name__}: {error}"}
        print(json.dumps(answer), flush=True)


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def peak_extra_bytes(run) -> int:
    """Peak resident memory added while `run()` executes: reset the high-water mark
    (/proc/self/clear_refs, Linux >= 4.0), run, read VmHWM - VmRSS before. Counts every
    allocator (numpy, Numba's NRT, torch), unlike tracemalloc."""
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")
    before = _status_kib("VmRSS")
    run()
    return (_status_kib("VmHWM") - before) * 1024


SETTLE_S = 0.25


def timed(run, calls: int = 1) -> float:
    """Seconds per call over `calls` back-to-back calls, after a pause: OpenMP threads of the
    worker that ran just before (torch's, or Numba's own) spin for a while after their last job
    and would steal a core. Short calls are repeated so that one sample lasts ~50 ms or more."""
    time.sleep(SETTLE_S)
    start = time.perf_counter()
    for _ in range(calls):
        run()
    return (time.perf_counter() - start) / calls


def calls_for(seconds_per_call: float, sample_s: float = 0.05) -> int:
    return max(1, min(1000, int(sample_s / max(seconds_per_call, 1e-6)) + 1))


def openblas_corename(library_glob: str) -> str:
    """Which OpenBLAS kernel a library runs (e.g. 'SkylakeX', 'Haswell'), or 'unknown'."""
    import ctypes
    import glob
    for path in glob.glob(library_glob):
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        for name in ("scipy_openblas_get_corename64_", "scipy_openblas_get_corename", "openblas_get_corename"):
            function = getattr(library, name, None)
            if function is not None:
                function.restype = ctypes.c_char_p
                return function().decode()
    return "unknown"


def machine_info() -> dict:
    model, flags = "unknown", set()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name") and model == "unknown":
                    model = line.split(":", 1)[1].strip()
                if line.startswith("flags") and not flags:
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    memory_gib = None
    try:
        memory_gib = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError):
        pass
    return dict(cpu_model=model, logical_cpus=os.cpu_count(),
                simd=[f for f in ("avx2", "fma", "avx512f", "avx512_bf16") if f in flags],
                memory_gib=memory_gib, python=platform.python_version(), platform=platform.platform(),
                threads_per_library=THREADS, thread_variables={v: str(THREADS) for v in THREAD_VARIABLES})


def median(values):
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else 0.5 * (ordered[middle - 1] + ordered[middle])
