"""Gradient health over training: per-layer gradient norm and update/weight ratio, from log.json.

The training loop logs, every `log_every` steps, for each parameter:
    grad_norm      |dL/dW| (after clipping)
    update_ratio   |W_new - W_old| / |W_new|   (~1e-3 is the classic healthy range for Adam-type training)
`plot_grad_health(run_dir)` draws both over the steps, one line per layer (parameters of a module
averaged), and writes grad_health.png into the run folder.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from ..errors import MinilmError
from ..train import read_log


def layer_of(parameter_name: str) -> str:
    """`blocks.2.attn.q_proj.weight` -> `blocks.2.attn.q_proj`."""
    return parameter_name.rsplit(".", 1)[0] if "." in parameter_name else parameter_name


def collect(history: list) -> tuple[list[int], dict[str, dict[str, list[float]]]]:
    steps, series = [], defaultdict(lambda: {"grad_norm": [], "update_ratio": []})
    for entry in history:
        layers = entry.get("layers")
        if not layers:
            continue
        steps.append(entry["step"])
        grouped = defaultdict(lambda: {"grad_norm": [], "update_ratio": []})
        for name, stats in layers.items():
            for key in ("grad_norm", "update_ratio"):
                grouped[layer_of(name)][key].append(stats[key])
        for layer, stats in grouped.items():
            for key, values in stats.items():
                series[layer][key].append(float(np.sqrt(np.sum(np.square(values)))) if key == "grad_norm"
                                          else float(np.mean(values)))
    return steps, dict(series)


def plot_grad_health(run_dir, out: str | None = None) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    history = read_log(run_dir)["history"]
    steps, series = collect(history)
    if not steps:
        raise MinilmError(f"{run_dir}/log.json has no per-layer gradient statistics (train with log_every > 0)")
    fig, axes = plt.subplots(1, 2, figsize=(13, 5))
    cmap = plt.cm.viridis(np.linspace(0, 1, len(series)))
    for color, (layer, stats) in zip(cmap, sorted(series.items())):
        n = min(len(steps), len(stats["grad_norm"]))
        axes[0].plot(steps[:n], stats["grad_norm"][:n], color=color, lw=0.9, label=layer)
        axes[1].plot(steps[:n], stats["update_ratio"][:n], color=color, lw=0.9)
    axes[0].set(yscale="log", xlabel="step", ylabel="gradient norm |dL/dW|", title="gradient norm per layer")
    axes[1].set(yscale="log", xlabel="step", ylabel="|dW| / |W|", title="update / weight ratio per layer")
    axes[1].axhline(1e-3, color="red", lw=0.8, ls="--")
    for ax in axes:
        ax.grid(alpha=0.3)
    if len(series) <= 40:
        axes[0].legend(fontsize=5, ncol=2)
    fig.tight_layout()
    path = Path(out) if out else Path(run_dir) / "grad_health.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
