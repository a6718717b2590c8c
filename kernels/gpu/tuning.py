"""Run mode (compiled on a CUDA GPU, or Triton's interpreter on the CPU) and a small autotuner.

Triton decides at decoration time (`@triton.jit`) whether a kernel is compiled or interpreted,
from the environment variable TRITON_INTERPRET. So the mode is fixed when kernels.gpu is first
imported; `check_mode()` refuses to launch if the variable changed since, instead of failing
obscurely inside Triton.

The autotuner is ours rather than `triton.autotune` so that its behaviour is the same on every
Triton version: for each key (shapes, dtype, flags) the first call times every candidate config
with `triton.testing.do_bench` and keeps the fastest; candidates that do not fit the GPU
(too much shared memory, too many registers) are skipped. Under the interpreter each kernel has
exactly one small candidate, so nothing is timed and tests stay fast. Every kernel here writes
all of its outputs on every launch (no accumulation, no atomics), so timing by re-running is safe.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from ..errors import BackendNotAvailable


def _env_interpret() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0").strip().lower() in ("1", "true", "yes", "on")


INTERPRETED = _env_interpret()   # the mode the kernels in this package were decorated in


def interpreter_mode() -> bool:
    """True when this package's kernels run through Triton's interpreter (on the CPU)."""
    return INTERPRETED


def dot_upcast(torch_dtype) -> bool:
    """True when tl.dot operands must be cast to fp32 first: Triton's interpreter keeps bfloat16 as
    raw 16-bit integers and its tl.dot multiplies those bits (garbage). The cast is exact, and
    compiled kernels never take this path."""
    import torch
    return INTERPRETED and torch_dtype == torch.bfloat16


def cuda_available() -> bool:
    import torch
    return bool(torch.cuda.is_available())


def check_mode() -> None:
    """Raise a clear error when the kernels cannot launch in this process."""
    if _env_interpret() != INTERPRETED:
        raise BackendNotAvailable(
            "kernels.gpu: TRITON_INTERPRET changed after kernels.gpu was imported "
            f"(imported with interpreter={'on' if INTERPRETED else 'off'}); Triton fixes the mode when "
            "it decorates a kernel, so set TRITON_INTERPRET before the first import")
    if not INTERPRETED and not cuda_available():
        raise BackendNotAvailable(
            "kernels.gpu: no CUDA GPU is visible, and the Triton kernels are compiled for one. "
            "Run on a machine with an NVIDIA GPU, or set TRITON_INTERPRET=1 before importing kernels "
            "to run them (slowly, for testing) through Triton's interpreter on the CPU")


def launch_device():
    """Where tensors must live for a launch: the current CUDA device, or the CPU when interpreted."""
    import torch
    check_mode()
    return torch.device("cpu") if INTERPRETED else torch.device("cuda", torch.cuda.current_device())


@dataclass(frozen=True)
class Config:
    """One candidate launch configuration: constexpr block sizes plus warps and pipeline stages."""
    blocks: dict = field(hash=False)
    num_warps: int = 4
    num_stages: int = 2

    def launch_options(self) -> dict:
        if INTERPRETED:                 # the interpreter ignores (and may reject) GPU-only options
            return dict(self.blocks)
        return dict(self.blocks, num_warps=self.num_warps, num_stages=self.num_stages)

    def describe(self) -> str:
        blocks = " ".join(f"{name}={value}" for name, value in self.blocks.items())
        return f"{blocks} warps={self.num_warps} stages={self.num_stages}"


_BEST: dict = {}


def size_bucket(size: int) -> int:
    """Autotuning keys use sizes rounded up to a power of two, so nearby shapes share a choice."""
    return 1 << max(0, int(size) - 1).bit_length()


def autotune_enabled() -> bool:
    """MINILM_TRITON_AUTOTUNE=0 skips the timing and takes each kernel's first candidate."""
    return os.environ.get("MINILM_TRITON_AUTOTUNE", "1") != "0"


def autotuned_launch(name: str, key: tuple, candidates: list[Config], launch) -> Config:
    """Launch `launch(config)` with the fastest candidate for `key`, timing them on first use."""
    cache_key = (name,) + tuple(key)
    best = _BEST.get(cache_key)
    if best is None:
        tune = len(candidates) > 1 and autotune_enabled()
        best = _tune(name, candidates, launch) if tune else candidates[0]
        _BEST[cache_key] = best
    launch(best)
    return best


def _tune(name: str, candidates: list[Config], launch) -> Config:
    from triton.testing import do_bench
    timings, failures = {}, []
    for index, config in enumerate(candidates):
        try:
            launch(config)                                   # compile (and catch resource errors) first
            timings[index] = do_bench(lambda: launch(config), warmup=5, rep=20, quantiles=[0.5])
        except Exception as error:  # noqa: BLE001 - a config that cannot compile on this GPU is skipped
            failures.append(f"{config.describe()}: {type(error).__name__}: {error}")
    if not timings:
        raise RuntimeError(f"{name}: no launch configuration worked on this GPU:\n  " + "\n  ".join(failures))
    best_index = min(timings, key=lambda i: timings[i] if not isinstance(timings[i], list) else timings[i][0])
    return candidates[best_index]


def chosen_configs() -> dict:
    """The configs the autotuner picked so far, for benchmark reports: {(kernel, key...): description}."""
    return {key: config.describe() for key, config in _BEST.items()}
