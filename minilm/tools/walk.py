"""`minilm walk`: the backward pass of a tiny model, layer by layer, from the loss to the embeddings.

For each op (in the order backward runs): the module it belongs to, the gradient that arrives
(shape, norm), the formula applied, and the gradients it sends on. `--op NAME` (or `--op #ROW`)
stops at that op and checks its backward numerically: the op is re-run on its recorded inputs in
float64 and L = sum(out * g_in) is differentiated by central differences.
"""
from __future__ import annotations

import numpy as np

from .. import functional as F
from ..autograd import Tensor
from ..autograd.gradcheck import gradcheck
from ..autograd.trace import trace
from ..errors import MinilmError


def tiny_gpt_batch(seed: int = 0, context: int = 8, batch: int = 2):
    """A 2-layer GPT (d_model 16, 2 heads, float64) on the built-in corpus's characters, and one batch."""
    from ..data import CharTokenizer, builtin_corpus, get_batch
    from ..models import GPT, GPTConfig
    text = builtin_corpus().text
    tokenizer = CharTokenizer.train(text)
    ids = tokenizer.encode(text[:20_000])
    x, y = get_batch(ids, batch, context, np.random.default_rng(seed))
    model = GPT(GPTConfig(vocab_size=tokenizer.vocab_size, context=context, d_model=16, n_heads=2, n_layers=2,
                          seed=seed))
    model.to(np.float64)
    return model, x, y


def lm_loss(model, x, y):
    logits = model(x)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


def _norm(s):
    return f"{tuple(s['shape'])} |g|={s['norm']:.3e}" if s else "-"


def walk(model=None, batch=None, loss_fn=lm_loss, op: str | None = None, out=print) -> dict:
    """Print the walk; return {'rows': n, 'checked': report or None}."""
    if model is None:
        model, x, y = tiny_gpt_batch()
    else:
        x, y = batch
    model.zero_grad()
    with trace(keep_inputs=True) as tr:
        loss = loss_fn(model, x, y)
        loss.backward()
    out(f"loss = {loss.item():.6f}   (model {type(model).__name__}, {model.num_parameters():,} parameters, "
        f"batch {tuple(np.shape(x))})")
    out("backward, from the loss to the embeddings:")
    current_module = None
    target_row = None
    if op is not None and op.startswith("#"):
        target_row = int(op[1:])
    for r in tr.rows:
        if r.phase == "forward":
            continue
        module = r.module or "(model)"
        if module != current_module:
            out(f"\n[{module}]")
            current_module = module
        incoming = ", ".join(_norm(s) for s in r.outputs)
        sent = ", ".join(_norm(s) for s in r.inputs)
        out(f"  #{r.index:<4} {r.op:<16} dL/dout {incoming:<32} -> dL/dinputs {sent}")
        if r.formula:
            out(f"        {r.formula}")
        hit = (target_row is not None and r.index == target_row) or \
              (target_row is None and op is not None and r.phase == "backward" and r.op == op)
        if hit:
            report = check_step(tr, r.index)
            out(f"\nnumerical check of #{r.index} ({r.op}):\n{report}")
            return {"rows": len(tr.rows), "checked": report}
    if op is not None:
        raise MinilmError(f"walk: no backward step named {op!r}; ops seen: "
                          f"{sorted({r.op for r in tr.rows if r.phase == 'backward'})}")
    return {"rows": len(tr.rows), "checked": None}


def check_step(tr, row_index: int):
    """Re-run one recorded op in float64 on its inputs and gradcheck L = sum(out * g_in)."""
    for index, node, grads_out in tr.nodes:
        if index == row_index:
            break
    else:
        raise MinilmError(f"walk: row #{row_index} is not a backward step")
    fn, inputs, kwargs = tr.calls[id(node)]
    leaves, positions = [], []
    args = []
    for i, value in enumerate(inputs):
        if isinstance(value, Tensor) and node.parents[i] is not None:
            leaf = Tensor(value.data.astype(np.float64), requires_grad=True, name=f"input{i}")
            leaves.append(leaf)
            positions.append(i)
            args.append(leaf)
        elif isinstance(value, Tensor):
            args.append(Tensor(value.data))
        else:
            args.append(value)
    weights = [np.asarray(g, dtype=np.float64) for g in grads_out]

    def projected(*xs):
        call = list(args)
        for p, leaf in zip(positions, xs):
            call[p] = leaf
        result = fn.apply(*call, **kwargs)
        results = result if isinstance(result, tuple) else (result,)
        total = None
        for r, w in zip(results, weights):
            term = (r * Tensor(w)).sum()
            total = term if total is None else total + term
        return total
    return gradcheck(projected, leaves, max_elements=200)
