"""Attention maps of a trained GPT for a prompt: a PNG grid of heads (columns) x layers (rows).

Each cell shows P[i, j], how much query position i (row) attends to key position j (column),
recomputed from the layer's own input by MultiHeadAttention.attention_weights.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..autograd import no_grad
from ..errors import MinilmError


def attention_maps(model, ids: np.ndarray) -> np.ndarray:
    """(layers, heads, T, T) probabilities for one sequence of ids."""
    if not hasattr(model, "blocks"):
        raise MinilmError("attention maps need a transformer model (GPT or BERT)")
    captured = []
    handles = [block.attn.register_forward_hook(
        lambda module, inputs, output: captured.append(module.attention_weights(inputs[0])[0]))
        for block in model.blocks]
    try:
        with no_grad():
            model.eval()
            model(np.asarray(ids)[None, :])
    finally:
        for h in handles:
            h.remove()
    return np.stack(captured)


def plot_attention_maps(maps: np.ndarray, labels: list[str], path) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    layers, heads = maps.shape[:2]
    fig, axes = plt.subplots(layers, heads, figsize=(2.4 * heads + 1, 2.4 * layers + 0.6), squeeze=False)
    shown = [repr(c)[1:-1] if c.strip() else "␣" for c in labels]
    for layer in range(layers):
        for head in range(heads):
            ax = axes[layer, head]
            ax.imshow(maps[layer, head], cmap="viridis", vmin=0, vmax=1)
            ax.set_xticks(range(len(shown)))
            ax.set_yticks(range(len(shown)))
            ax.set_xticklabels(shown, fontsize=5)
            ax.set_yticklabels(shown, fontsize=5)
            if layer == 0:
                ax.set_title(f"head {head}", fontsize=8)
            if head == 0:
                ax.set_ylabel(f"layer {layer}\nquery", fontsize=8)
    fig.suptitle("attention P[query, key]", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path
