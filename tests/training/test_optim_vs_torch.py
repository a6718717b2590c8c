"""Optimizers step for step against torch.optim on the same gradients (float64)."""
import numpy as np
import pytest
import torch

import minilm
from minilm import optim

CASES = [
    ("sgd", dict(lr=0.1), {}),
    ("sgd", dict(lr=0.1, momentum=0.9), {}),
    ("sgd", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01), {}),
    ("sgd", dict(lr=0.05, momentum=0.5, dampening=0.3), {}),
    ("adam", dict(lr=0.01), {}),
    ("adam", dict(lr=0.01, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1), {}),
    ("adamw", dict(lr=0.01, weight_decay=0.1), {}),
    ("adamw", dict(lr=0.003, betas=(0.9, 0.98), weight_decay=0.0), {}),
]
OURS = {"sgd": optim.SGD, "adam": optim.Adam, "adamw": optim.AdamW}
THEIRS = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}


@pytest.mark.parametrize("name,options,_", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_matches_torch_step_for_step(name, options, _):
    rng = np.random.default_rng(0)
    shapes = [(4, 3), (3,), (2, 2, 2)]
    ours = [minilm.tensor(rng.standard_normal(s), requires_grad=True) for s in shapes]
    theirs = [torch.tensor(p.data.copy(), requires_grad=True) for p in ours]
    opt_ours, opt_theirs = OURS[name](ours, **options), THEIRS[name](theirs, **options)
    for step in range(12):
        grads = [rng.standard_normal(s) for s in shapes]
        if step == 5:
            grads[1] = None                              # a parameter with no gradient this step
        for p, q, g in zip(ours, theirs, grads):
            p.grad = None if g is None else g.copy()
            q.grad = None if g is None else torch.tensor(g)
        opt_ours.step()
        opt_theirs.step()
        for p, q in zip(ours, theirs):
            np.testing.assert_allclose(p.data, q.detach().numpy(), rtol=1e-12, atol=1e-13)


def test_clip_grad_norm_matches_torch():
    rng = np.random.default_rng(1)
    grads = [rng.standard_normal((5, 4)) * 3, rng.standard_normal(7)]
    ours = [minilm.tensor(np.zeros(g.shape), requires_grad=True) for g in grads]
    theirs = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for p, q, g in zip(ours, theirs, grads):
        p.grad, q.grad = g.copy(), torch.tensor(g)
    norm = optim.clip_grad_norm(ours, 1.0)
    ref = torch.nn.utils.clip_grad_norm_(theirs, 1.0)
    assert norm == pytest.approx(ref.item(), rel=1e-12)
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(p.grad, q.grad.numpy(), rtol=1e-12)


def test_clip_grad_norm_refuses_nan():
    p = minilm.tensor(np.zeros(2), requires_grad=True)
    p.grad = np.array([1.0, np.nan])
    with pytest.raises(minilm.NonFiniteError, match="NaN"):
        optim.clip_grad_norm([p], 1.0)


def test_warmup_cosine_schedule():
    p = minilm.tensor(np.zeros(2), requires_grad=True)
    opt = optim.SGD([p], lr=1.0)
    sched = optim.WarmupCosine(opt, warmup_steps=10, total_steps=110, min_ratio=0.1)
    lrs = []
    for _ in range(120):
        lrs.append(opt.param_groups[0]["lr"])
        sched.step()
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert lrs[10] == pytest.approx(1.0) and lrs[60] == pytest.approx(0.55)
    assert lrs[110] == pytest.approx(0.1) and lrs[119] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))


def test_state_dict_round_trip_continues_exactly():
    rng = np.random.default_rng(2)
    p = minilm.tensor(rng.standard_normal(5), requires_grad=True)
    q = minilm.tensor(p.data.copy(), requires_grad=True)
    grads = [rng.standard_normal(5) for _ in range(6)]
    a = optim.AdamW([p], lr=0.01)
    for g in grads[:3]:
        p.grad = g.copy()
        a.step()
    b = optim.AdamW([q], lr=0.01)
    q.data[:] = p.data
    b.load_state_dict(a.state_dict())
    for g in grads[3:]:
        p.grad, q.grad = g.copy(), g.copy()
        a.step()
        b.step()
    np.testing.assert_array_equal(p.data, q.data)
    assert a.state_bytes() == 2 * 5 * 8
