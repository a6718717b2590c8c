"""Reverse-mode differentiation: walk the graph from the output back to the leaves.

1. Order the nodes so every node comes before the nodes that produced its inputs (reverse
   post-order of an iterative depth-first search: no recursion, so 10,000-op chains are fine).
2. Seed dL/d(output) = grad, then for each node: call its Function's backward with the summed
   gradient of its outputs, un-broadcast each input gradient to the input's shape, and add it to
   that input's running sum (a tensor used twice, or by two ops, gets the sum of both uses).
3. Leaves (tensors made by the user) receive their total in `.grad`, accumulating (+=) across
   backward calls until `zero_grad`, as in PyTorch.
"""
from __future__ import annotations

import numpy as np

from .broadcast import unbroadcast
from .function import OBSERVERS


def topological_order(root_node) -> list:
    """Nodes reachable from root_node, each before every node that produced one of its inputs."""
    post_order, visited = [], set()
    stack = [(root_node, False)]
    while stack:
        node, children_done = stack.pop()
        if children_done:
            post_order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        for parent in node.parents:
            if parent is not None and parent._node is not None and id(parent._node) not in visited:
                stack.append((parent._node, False))
    post_order.reverse()
    return post_order


def _apply_hooks(hooks, grad):
    for hook in hooks:
        changed = hook(grad)
        if changed is not None:
            grad = np.asarray(changed, dtype=grad.dtype)
    return grad


def run_backward(root, grad: np.ndarray) -> None:
    """Accumulate d(root)/d(leaf) * grad into every leaf's .grad."""
    order = topological_order(root._node)
    pending = {id(root._node): [None] * root._node.n_outputs}
    pending[id(root._node)][root._index] = grad
    leaf_grads = {}                       # id(tensor) -> [tensor, summed grad]
    for node in order:
        grads_out = pending.pop(id(node), None)
        if grads_out is None:
            continue
        for index in range(node.n_outputs):
            g = grads_out[index]
            if g is None:                 # an output of a multi-output op that nothing used
                g = grads_out[index] = np.zeros(node.output_shapes[index], node.output_dtypes[index])
            if node.output_hooks and index in node.output_hooks:
                g = grads_out[index] = _apply_hooks(node.output_hooks[index], g)
            if node.retained and index in node.retained:
                kept = node.retained[index]()
                if kept is not None:
                    kept.grad = g.copy() if kept.grad is None else kept.grad + g
        grads_in = node.function.backward(node.ctx, *grads_out)
        if not isinstance(grads_in, tuple):
            grads_in = (grads_in,)
        if OBSERVERS:
            for observer in OBSERVERS:
                observer.on_backward(node, grads_out, grads_in)
        for position, (parent, g) in enumerate(zip(node.parents, grads_in)):
            if parent is None or g is None:
                continue
            g = np.asarray(g)
            if g.shape != parent.data.shape:
                reduced = unbroadcast(g, parent.data.shape)
                if OBSERVERS:
                    for observer in OBSERVERS:
                        observer.on_unbroadcast(node, position, g, reduced)
                g = reduced
            if g.dtype != parent.data.dtype:
                g = g.astype(parent.data.dtype)
            if parent._node is None:
                entry = leaf_grads.get(id(parent))
                if entry is None:
                    leaf_grads[id(parent)] = [parent, g]
                else:
                    entry[1] = entry[1] + g
            else:
                slots = pending.setdefault(id(parent._node), [None] * parent._node.n_outputs)
                current = slots[parent._index]
                slots[parent._index] = g if current is None else current + g
    for leaf, g in leaf_grads.values():
        if leaf._hooks:
            g = _apply_hooks(leaf._hooks, g)
        if leaf.grad is None:
            leaf.grad = np.array(g, dtype=leaf.data.dtype, copy=True)
        else:
            leaf.grad += g
