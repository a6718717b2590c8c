"""Numba attention (kernels.cpu) against the float64 NumPy reference.

float64: 1e-10 relative. float32: an error budget, since both sides round differently: the
kernel's error against the float64 reference may be at most twice that of the reference itself
run in float32, plus a floor of a few float32 ulps of the result's size times the largest logit
(the reference can be exact by luck, e.g. identical keys give bitwise-equal scores in one matmul
but not across blocks, while a rounded logit of size |S| legitimately moves P by eps |S|).
"""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given

pytest.importorskip("numba")

import kernels                                          # noqa: E402
from kernels import cpu, reference                      # noqa: E402
from kernels.errors import KernelInputError             # noqa: E402
from kernels.testing.strategies import attention_cases  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FLOAT32_ULP = float(np.finfo(np.float32).eps)


def run_both(backend, case):
    """Forward and backward of one backend on one case: (out, lse, dq, dk, dv)."""
    out, lse = backend.attention_forward(case.q, case.k, case.v, **case.kwargs())
    grads = backend.attention_backward(case.dout, case.q, case.k, case.v, out, lse, **case.kwargs())
    return (out, lse) + tuple(grads)


def max_error(got, want):
    """Largest |got - want| over the finite entries of want; inf where finiteness differs."""
    finite = np.isfinite(want)
    if not np.array_equal(np.isfinite(got), finite):
        return np.inf
    if not finite.any():
        return 0.0
    return float(np.max(np.abs(got[finite].astype(np.float64) - want[finite])))


def magnitude(want):
    finite = want[np.isfinite(want)]
    return float(np.max(np.abs(finite))) if finite.size else 0.0


NAMES = ("out", "lse", "dq", "dk", "dv")


def natural_scales(case):
    """The size each result is measured against: its own largest entry, or where that is tiny
    through cancellation (uniform rows make dS ~ 0), the size of the terms that cancelled:
    out ~ |v|, lse ~ 1, dv ~ |dout|, dq ~ scale |dout| |v| |k|, dk ~ scale |dout| |v| |q|."""
    size = lambda x: float(np.max(np.abs(x))) if x.size else 0.0
    scale = case.scale if case.scale is not None else 1 / np.sqrt(case.q.shape[-1])
    terms = abs(scale) * size(case.dout) * size(case.v)
    return dict(out=size(case.v), lse=1.0, dq=terms * size(case.k), dk=terms * size(case.q),
                dv=size(case.dout))


def largest_logit(case):
    """max |scale * q . k|: a rounding error of eps |S| in a logit moves P by that much, relatively."""
    group = case.q.shape[1] // case.k.shape[1]
    keys = np.repeat(case.k, group, axis=1)
    scale = case.scale if case.scale is not None else 1 / np.sqrt(case.q.shape[-1])
    logits = np.matmul(case.q, np.swapaxes(keys, -1, -2))
    return abs(scale) * float(np.max(np.abs(logits))) if logits.size else 0.0


def check_float64(case):
    got, want = run_both(cpu, case), run_both(reference, case)
    scales = natural_scales(case)
    for name, g, w in zip(NAMES, got, want):
        assert g.shape == w.shape and g.dtype == np.float64, name
        assert not np.isnan(g).any(), f"{name} has NaN ({case.describe()})"
        error = max_error(g, w)
        assert error <= 1e-10 * max(magnitude(w), scales[name]), f"{name}: error {error:.3g} ({case.describe()})"


def check_float32_budget(case64):
    want = run_both(reference, case64)
    case32 = case64.astype(np.float32)
    got = run_both(cpu, case32)
    baseline = run_both(reference, case32)
    scales = natural_scales(case64)
    conditioning = max(1.0, largest_logit(case64))
    for name, g, b, w in zip(NAMES, got, baseline, want):
        assert g.dtype == np.float32, name
        assert not np.isnan(g).any(), f"{name} has NaN ({case32.describe()})"
        kernel_error, reference_error = max_error(g, w), max_error(b, w)
        budget = 2 * reference_error + 4 * FLOAT32_ULP * conditioning * max(magnitude(w), scales[name])
        assert kernel_error <= budget, (
            f"{name}: numba float32 error {kernel_error:.3g} > 2 x reference float32 error "
            f"{reference_error:.3g} + floor ({case32.describe()})")


@given(attention_cases(max_batch=3, max_heads=4, max_seq_q=300, max_seq_k=300, max_head_dim=160,
                       max_logit=1e3))
def test_float64_matches_reference(case):
    check_float64(case)


@given(attention_cases(max_batch=2, max_heads=4, max_seq_q=160, max_seq_k=160,
                       head_dims=[1, 40, 59, 64, 80, 111, 160], max_logit=1e3))
def test_float32_within_error_budget(case):
    check_float32_budget(case)


@pytest.mark.parametrize("causal", [False, True])
def test_blocks_and_gqa_at_block_boundaries(causal):
    """Sizes around the 128-row blocks, Nq != Nk both ways, GQA with groups of 3."""
    rng = np.random.default_rng(7)
    for seq_q, seq_k in [(129, 257), (255, 128), (300, 1)]:
        q = rng.standard_normal((2, 6, seq_q, 40))
        k = rng.standard_normal((2, 2, seq_k, 40))
        v = rng.standard_normal((2, 2, seq_k, 40))
        mask = rng.random((2, seq_k)) < 0.3
        case = _case(q, k, v, rng.standard_normal(q.shape), mask, causal)
        check_float64(case)


def _case(q, k, v, dout, mask, causal, scale=None):
    from kernels.testing.strategies import AttentionCase
    return AttentionCase(q, k, v, dout, mask, causal, scale, seed=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fully_masked_rows_give_zero_output_minus_inf_lse_zero_grads(dtype):
    rng = np.random.default_rng(1)
    b, h, seq_q, seq_k, d = 2, 2, 9, 6, 5
    q, dout = (rng.standard_normal((b, h, seq_q, d)).astype(dtype) for _ in range(2))
    k, v = (rng.standard_normal((b, h, seq_k, d)).astype(dtype) for _ in range(2))
    mask = np.zeros((b, seq_k), dtype=bool)
    mask[1] = True                                   # batch 1 sees no key at all
    # causal with Nq > Nk: query i sees keys j <= i - 3, so rows 0..2 of batch 0 see nothing
    out, lse = cpu.attention_forward(q, k, v, causal=True, key_padding_mask=mask)
    dq, dk, dv = cpu.attention_backward(dout, q, k, v, out, lse, causal=True, key_padding_mask=mask)
    for x in (out, lse, dq, dk, dv):
        assert not np.isnan(x).any()
    assert np.all(out[1] == 0) and np.all(lse[1] == -np.inf)
    assert np.all(out[0, :, :3] == 0) and np.all(lse[0, :, :3] == -np.inf)
    assert np.all(np.isfinite(lse[0, :, 3:]))
    assert np.all(dq[1] == 0) and np.all(dk[1] == 0) and np.all(dv[1] == 0)
    assert np.all(dq[0, :, :3] == 0)
    want = reference.attention_forward(q.astype(np.float64), k.astype(np.float64), v.astype(np.float64),
                                       causal=True, key_padding_mask=mask)[0]
    assert np.allclose(out, want, atol=1e-5 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_huge_logits_stay_finite(dtype):
    """Logits around +-1e4: the online softmax must rescale, never overflow."""
    rng = np.random.default_rng(2)
    q = (rng.standard_normal((1, 2, 200, 16)) * 30).astype(dtype)
    k = (rng.standard_normal((1, 2, 300, 16)) * 30).astype(dtype)
    v, dout = rng.standard_normal(k.shape).astype(dtype), rng.standard_normal(q.shape).astype(dtype)
    out, lse = cpu.attention_forward(q, k, v, scale=1.0)
    grads = cpu.attention_backward(dout, q, k, v, out, lse, scale=1.0)
    assert np.abs(lse).max() > 1e3
    for x in (out, lse) + grads:
        assert np.isfinite(x).all()
    want, want_lse = reference.attention_forward(q.astype(np.float64), k.astype(np.float64),
                                                 v.astype(np.float64), scale=1.0)
    tolerance = 1e-2 if dtype == np.float32 else 1e-9   # float32 logits of 1e4 carry ~1e-3 abs. error
    assert np.abs(lse - want_lse).max() <= tolerance
    assert np.abs(out - want).max() <= tolerance


@pytest.mark.parametrize("batch, heads, kv_heads", [(2, 4, 2), (1, 3, 1)])   # one-pass, two-pass kernel
def test_backward_is_deterministic_across_runs_and_thread_counts(batch, heads, kv_heads):
    import numba
    rng = np.random.default_rng(3)
    q, dout = (rng.standard_normal((batch, heads, 300, 64)).astype(np.float32) for _ in range(2))
    k, v = (rng.standard_normal((batch, kv_heads, 280, 64)).astype(np.float32) for _ in range(2))
    out, lse = cpu.attention_forward(q, k, v, causal=True)
    first = cpu.attention_backward(dout, q, k, v, out, lse, causal=True)
    again = cpu.attention_backward(dout, q, k, v, out, lse, causal=True)
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one_thread = cpu.attention_backward(dout, q, k, v, out, lse, causal=True)
        one_thread_out = cpu.attention_forward(q, k, v, causal=True)
    finally:
        numba.set_num_threads(threads)
    for a, b, c in zip(first, again, one_thread):
        assert a.tobytes() == b.tobytes() == c.tobytes()
    assert out.tobytes() == one_thread_out[0].tobytes() and lse.tobytes() == one_thread_out[1].tobytes()


def test_pairs_with_the_reference_backward():
    """Any backend's forward pairs with any backend's backward (same out, lse contract)."""
    rng = np.random.default_rng(4)
    q, dout = (rng.standard_normal((1, 2, 70, 24)) for _ in range(2))
    k, v = (rng.standard_normal((1, 2, 90, 24)) for _ in range(2))
    out, lse = cpu.attention_forward(q, k, v, causal=True)
    mixed = reference.attention_backward(dout, q, k, v, out, lse, causal=True)
    ours = cpu.attention_backward(dout, q, k, v, out, lse, causal=True)
    for a, b in zip(mixed, ours):
        assert np.abs(a - b).max() <= 1e-10 * np.abs(a).max()


def test_dispatch_and_non_contiguous_inputs():
    rng = np.random.default_rng(5)
    q = np.swapaxes(rng.standard_normal((1, 40, 3, 8)), 1, 2)         # (B, H, Nq, D) view
    k = np.swapaxes(rng.standard_normal((1, 50, 3, 8)), 1, 2)         # (B, Hkv, Nk, D) view
    v = np.swapaxes(rng.standard_normal((1, 50, 3, 8)), 1, 2)
    assert "numba" in kernels.available_backends()
    got = kernels.attention_forward(q, k, v, backend="numba")
    want = kernels.attention_forward(q, k, v, backend="reference")
    assert np.abs(got[0] - want[0]).max() <= 1e-12 and np.abs(got[1] - want[1]).max() <= 1e-12


def test_bad_inputs_name_the_argument():
    q = np.zeros((1, 2, 4, 8), np.float32)
    k = np.zeros((1, 2, 5, 8), np.float32)
    with pytest.raises(KernelInputError, match=r"q must be \(B, H, Nq, D\); got \(2, 4, 8\)"):
        cpu.attention_forward(q[0], k, k)
    with pytest.raises(KernelInputError, match="v has dtype float64 but q has float32"):
        cpu.attention_forward(q, k, k.astype(np.float64))
    with pytest.raises(KernelInputError, match="dtype in"):
        cpu.attention_forward(q.astype(np.float16), k.astype(np.float16), k.astype(np.float16))
    with pytest.raises(KernelInputError, match=r"key_padding_mask must be \(B, Nk\)"):
        cpu.attention_forward(q, k, k, key_padding_mask=np.zeros((1, 4), bool))
    with pytest.raises(KernelInputError, match="key_padding_mask must be boolean"):
        cpu.attention_forward(q, k, k, key_padding_mask=np.zeros((1, 5), np.int64))
    with pytest.raises(KernelInputError, match="must divide"):
        cpu.attention_forward(np.zeros((1, 3, 4, 8), np.float32), k, k)
    with pytest.raises(KernelInputError, match="NaN/inf"):
        cpu.attention_forward(q + np.nan, k, k)
    out, lse = cpu.attention_forward(q, k, k)
    with pytest.raises(KernelInputError, match=r"lse must be \(B, H, Nq\)"):
        cpu.attention_backward(q, q, k, k, out, lse[..., :-1])
    with pytest.raises(KernelInputError, match=r"dout must be \(B, H, Nq, D\)"):
        cpu.attention_backward(q[:, :1], q, k, k, out, lse)


def test_runs_unjitted_with_numba_disable_jit():
    """NUMBA_DISABLE_JIT=1 runs the same kernels as plain Python (the debugging switch)."""
    script = textwrap.dedent("""
        import numpy as np
        import numba
        assert numba.config.DISABLE_JIT
        from kernels import cpu, reference
        rng = np.random.default_rng(0)
        q, dout = (rng.standard_normal((1, 2, 5, 3)) for _ in range(2))
        k, v = (rng.standard_normal((1, 1, 4, 3)) for _ in range(2))
        mask = np.array([[False, False, True, False]])
        for dtype, tolerance in ((np.float64, 1e-12), (np.float32, 1e-5)):
            args = [x.astype(dtype) for x in (q, k, v)]
            out, lse = cpu.attention_forward(*args, causal=True, key_padding_mask=mask)
            grads = cpu.attention_backward(dout.astype(dtype), *args, out, lse, causal=True, key_padding_mask=mask)
            want_out, want_lse = reference.attention_forward(q, k, v, causal=True, key_padding_mask=mask)
            want = reference.attention_backward(dout, q, k, v, want_out, want_lse, causal=True, key_padding_mask=mask)
            assert np.allclose(out, want_out, atol=tolerance), dtype
            assert np.array_equal(np.isfinite(lse), np.isfinite(want_lse))
            for g, w in zip(grads, want):
                assert np.allclose(g, w, atol=tolerance), dtype
            a = rng.standard_normal((70, 300)).astype(dtype)
            b = rng.standard_normal((300, 65)).astype(dtype)
            assert np.allclose(cpu.matmul(a, b), a.astype(np.float64) @ b, atol=tolerance * 100)
        print("unjitted ok")
    """)
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "unjitted ok" in result.stdout
