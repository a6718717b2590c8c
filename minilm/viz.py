"""Pictures of the computation graph: ops as nodes, shapes and gradient norms on the edges,
grouped by module so a GPT block stays readable.

    minilm.viz.graph(loss, "graph.svg")      # graphviz `dot` when installed, else matplotlib (PNG/SVG)

To show gradient norms, `graph` runs one backward pass of its own while recording the gradient on
every edge, then restores every leaf's .grad as it was.
"""
from __future__ import annotations

import shutil
import subprocess
from collections import defaultdict
from pathlib import Path

import numpy as np

from .autograd import function
from .autograd.engine import topological_order
from .autograd.grad_mode import no_grad
from .errors import GradError


class _EdgeRecorder:
    def __init__(self):
        self.norms = {}                                    # (id(node), input position) -> norm

    def on_forward(self, *args):
        pass

    def on_backward(self, node, grads_out, grads_in):
        for position, g in enumerate(grads_in):
            if g is not None and node.parents[position] is not None:
                self.norms[(id(node), position)] = float(np.linalg.norm(np.asarray(g, dtype=np.float64)))

    def on_unbroadcast(self, node, position, before, after):
        self.norms[(id(node), position)] = float(np.linalg.norm(np.asarray(after, dtype=np.float64)))


def graph_structure(root, with_grads: bool = True, model=None) -> dict:
    """Nodes and edges of root's graph: {'nodes': [...], 'edges': [...]} (also used by the renderers)."""
    if root._node is None:
        raise GradError("viz.graph: the tensor has no graph (a leaf, or computed under no_grad())")
    order = topological_order(root._node)
    norms = {}
    if with_grads:
        leaves = {}
        for node in order:
            for p in node.parents:
                if p is not None and p._node is None:
                    leaves[id(p)] = (p, None if p.grad is None else p.grad.copy())
        recorder = _EdgeRecorder()
        function.OBSERVERS.append(recorder)
        try:
            root.backward(None if root.size == 1 else np.ones(root.shape, root.dtype))
        finally:
            function.OBSERVERS.remove(recorder)
            with no_grad():
                for p, saved in leaves.values():
                    p.grad = saved
        norms = recorder.norms
    param_names = {id(p): name for name, p in model.named_parameters()} if model is not None else {}
    nodes, edges, leaf_ids = [], [], {}
    for node in order:
        nodes.append({"id": f"op{id(node)}", "label": node.name, "module": node.module_path,
                      "shape": " ".join(str(s) for s in node.output_shapes), "kind": "op"})
        for position, p in enumerate(node.parents):
            if p is None:
                continue
            if p._node is not None:
                source = f"op{id(p._node)}"
            else:
                source = leaf_ids.get(id(p))
                if source is None:
                    source = leaf_ids[id(p)] = f"leaf{id(p)}"
                    nodes.append({"id": source, "label": param_names.get(id(p)) or p.name or "leaf", "module": "",
                                  "shape": str(p.shape), "kind": "leaf"})
            norm = norms.get((id(node), position))
            edges.append({"source": source, "target": f"op{id(node)}", "shape": str(p.shape),
                          "grad_norm": norm})
    return {"nodes": nodes, "edges": edges}


def to_dot(structure: dict) -> str:
    groups = defaultdict(list)
    for n in structure["nodes"]:
        groups[n["module"]].append(n)
    lines = ["digraph minilm {", '  rankdir=BT; node [fontname="Helvetica", fontsize=10];',
             '  edge [fontname="Helvetica", fontsize=8];']
    for k, (module, members) in enumerate(sorted(groups.items())):
        indent = "  "
        if module:
            lines.append(f'  subgraph cluster_{k} {{ label="{module}"; style=rounded; color=gray60;')
            indent = "    "
        for n in members:
            shape = "box" if n["kind"] == "leaf" else "ellipse"
            fill = "lightyellow" if n["kind"] == "leaf" else "lightblue"
            lines.append(f'{indent}{n["id"]} [label="{n["label"]}\\n{n["shape"]}", shape={shape}, '
                         f'style=filled, fillcolor={fill}];')
        if module:
            lines.append("  }")
    for e in structure["edges"]:
        grad = f"\\n|g|={e['grad_norm']:.3g}" if e["grad_norm"] is not None else ""
        lines.append(f'  {e["source"]} -> {e["target"]} [label="{e["shape"]}{grad}"];')
    lines.append("}")
    return "\n".join(lines)


def _draw_matplotlib(structure: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    depth = {}
    incoming = defaultdict(list)
    for e in structure["edges"]:
        incoming[e["target"]].append(e["source"])
    for n in structure["nodes"]:                                   # nodes come root-first (ops), leaves later
        depth.setdefault(n["id"], 0)
    changed = True
    while changed:                                                 # longest distance from the root
        changed = False
        for e in structure["edges"]:
            d = depth[e["target"]] + 1
            if depth[e["source"]] < d:
                depth[e["source"]], changed = d, True
    layers = defaultdict(list)
    for n in structure["nodes"]:
        layers[depth[n["id"]]].append(n)
    modules = sorted({n["module"] for n in structure["nodes"]})
    colors = plt.cm.tab20(np.linspace(0, 1, max(1, len(modules))))
    color_of = {m: colors[i] for i, m in enumerate(modules)}
    position = {}
    max_depth = max(layers) if layers else 0
    width = max(len(v) for v in layers.values()) if layers else 1
    for d, members in layers.items():
        members.sort(key=lambda n: (n["module"], n["label"]))
        for i, n in enumerate(members):
            position[n["id"]] = ((i + 0.5) / len(members) * width, max_depth - d)
    fig, ax = plt.subplots(figsize=(max(6, width * 2.2), max(4, (max_depth + 1) * 1.0)))
    for e in structure["edges"]:
        (x0, y0), (x1, y1) = position[e["source"]], position[e["target"]]
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0), arrowprops=dict(arrowstyle="->", color="gray", lw=0.8))
        label = e["shape"] + (f"\n|g|={e['grad_norm']:.2g}" if e["grad_norm"] is not None else "")
        ax.text((x0 + x1) / 2, (y0 + y1) / 2, label, fontsize=6, color="dimgray", ha="center")
    for n in structure["nodes"]:
        x, y = position[n["id"]]
        face = "lightyellow" if n["kind"] == "leaf" else color_of[n["module"]]
        ax.text(x, y, f"{n['label']}\n{n['shape']}", ha="center", va="center", fontsize=7,
                bbox=dict(boxstyle="round" if n["kind"] == "op" else "square", fc=face, ec="black", lw=0.5))
    handles = [plt.Rectangle((0, 0), 1, 1, color=color_of[m]) for m in modules if m]
    if handles:
        ax.legend(handles, [m for m in modules if m], fontsize=6, loc="upper left", title="module", title_fontsize=7)
    ax.set_xlim(-0.5, width + 0.5)
    ax.set_ylim(-0.8, max_depth + 0.8)
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)


def graph(root, path="graph.svg", with_grads: bool = True, engine: str = "auto", model=None) -> Path:
    """Render root's computation graph to `path` (.svg or .png); return the path written.
    Pass the model to label parameter leaves with their names (`blocks.0.attn.q_proj.weight`)."""
    path = Path(path)
    structure = graph_structure(root, with_grads, model)
    dot = shutil.which("dot")
    if engine in ("auto", "dot") and dot:
        fmt = path.suffix.lstrip(".") or "svg"
        subprocess.run([dot, f"-T{fmt}", "-o", str(path)], input=to_dot(structure), text=True, check=True)
    elif engine == "dot":
        raise GradError("viz.graph: graphviz's `dot` is not installed (apt-get install graphviz)")
    else:
        _draw_matplotlib(structure, path)
    return path
