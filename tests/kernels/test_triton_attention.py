"""Triton flash attention (kernels.gpu) against the float64 NumPy reference.

Where each test runs (tests/kernels/conftest.py sets TRITON_INTERPRET=1 when no GPU is visible):
  both modes      the hypothesis properties (float64 exact, fp32 error budget, fp16/bf16 error
                  budget), the masking/causal edge cases, bad input, NumPy/torch kinds, dispatch.
                  Under the interpreter on small shapes (seq <= 40, head dim <= 40, few examples);
                  compiled on a GPU with the larger shapes below.
  GPU only        (@pytest.mark.gpu, skipped with a reason elsewhere): the race test (60 backward
                  repeats on batch 16 give identical bits: the interpreter runs programs one after
                  another, so races cannot show there), large shapes, non-contiguous dout at
                  large shapes, low precision at long sequences and head dim up to 256.
  interpreter only: nothing is checked only there, but note what the interpreter cannot show:
                  tf32 (it is exact fp32), races, and the compiled bf16 tensor-core path (it
                  upcasts bf16 to fp32 for tl.dot, see kernels/gpu/tuning.py).
"""
from __future__ import annotations

import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("triton")

from hypothesis import given, settings  # noqa: E402

import kernels  # noqa: E402
from kernels import reference  # noqa: E402
from kernels.errors import KernelInputError  # noqa: E402
from kernels.testing.strategies import attention_cases  # noqa: E402

gpu = pytest.importorskip("kernels.gpu", reason="kernels.gpu needs triton and torch (the gpu extra)")

INTERPRETED = gpu.interpreter_mode()
COMPILED_ON_GPU = (not INTERPRETED) and gpu.cuda_available()
if not gpu.is_usable():
    pytest.skip("Triton kernels cannot launch here: no CUDA GPU and TRITON_INTERPRET was not set "
                "before kernels.gpu was imported", allow_module_level=True)
pytestmark = [pytest.mark.interpreter] if INTERPRETED else []
requires_gpu = pytest.mark.skipif(not COMPILED_ON_GPU, reason="needs a CUDA GPU with compiled Triton kernels "
                                  "(this run uses the interpreter or has no GPU)")
DEVICE = "cuda" if COMPILED_ON_GPU else "cpu"

# Small shapes under the interpreter (it runs every program instance in Python), larger compiled.
# MINILM_TRITON_EXAMPLES raises the interpreter's example count for a longer local run.
if INTERPRETED:
    SHAPES = dict(max_batch=2, max_heads=4, max_seq_q=40, max_seq_k=40, max_head_dim=40)
    EXAMPLES = settings(max_examples=int(os.environ.get("MINILM_TRITON_EXAMPLES", "10")))
else:
    SHAPES = dict(max_batch=2, max_heads=4, max_seq_q=300, max_seq_k=300, max_head_dim=256)
    EXAMPLES = settings()                    # the active hypothesis profile


# ---------------------------------------------------------------------------------------------
# helpers

def as_numpy64(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().to("cpu", torch.float64).numpy()
    return np.asarray(x, dtype=np.float64)


def max_error(x, expected) -> float:
    """Max |x - expected| over finite entries; -inf (lse of fully masked rows) must match exactly."""
    x, expected = as_numpy64(x), as_numpy64(expected)
    assert not np.isnan(x).any(), "NaN in kernel output"
    assert np.array_equal(np.isneginf(x), np.isneginf(expected)), "-inf entries (fully masked rows) differ"
    finite = np.isfinite(expected)
    assert np.isfinite(x[finite]).all(), "inf in kernel output where the reference is finite"
    return float(np.abs(x[finite] - expected[finite]).max(initial=0.0))


def magnitude(expected) -> float:
    expected = as_numpy64(expected)
    return float(np.abs(expected[np.isfinite(expected)]).max(initial=0.0))


def rounding_floor(case, expected, eps: float) -> float:
    """A few ulps at the problem's natural scale: exp's relative error grows with |logit|, and a
    gradient that cancels to ~0 still carries the rounding of the terms it summed."""
    c = case.astype(np.float64)
    group = c.q.shape[1] // c.k.shape[1]
    scale = c.scale if c.scale is not None else 1.0 / np.sqrt(c.q.shape[-1])
    logits = np.abs(np.matmul(c.q, np.swapaxes(np.repeat(c.k, group, 1), -1, -2))).max(initial=0.0) * scale
    values = max(magnitude(x) for x in expected)
    return 4 * eps * (1.0 + logits) * (1.0 + values)


def delta_rounding_floor(case, eps: float) -> dict:
    """The backward takes `out` rounded to the input dtype and forms delta = rowsum(dout * out)
    from it, as FlashAttention does; autograd's naive backward never rounds `out` there. The
    resulting error, |d delta_i| <= eps * sum_d |dout_id out_id|, reaches dq and dk through
    dS = P * (dP - delta):  |d dq_i| <= scale * |d delta_i| * sum_j P_ij |k_j|,
    |d dk_j| <= scale * sum_i P_ij |d delta_i| |q_i|. Returned per gradient (dv has none)."""
    from kernels.reference import _expand_kv, _probabilities, visible_keys
    c = case.astype(np.float64)
    out, lse = reference.attention_forward(c.q, c.k, c.v, **c.kwargs())
    group = c.q.shape[1] // c.k.shape[1]
    scale = c.scale if c.scale is not None else 1.0 / np.sqrt(c.q.shape[-1])
    k_full = _expand_kv(c.k, group)
    allowed = visible_keys(c.q.shape[2], c.k.shape[2], c.causal, c.key_padding_mask, c.q.shape[0])
    probs = _probabilities(np.matmul(c.q, np.swapaxes(k_full, -1, -2)) * scale, lse, allowed)   # (B,H,Nq,Nk)
    delta_error = eps * np.sum(np.abs(c.dout * out), axis=-1)                                  # (B,H,Nq)
    dq_floor = scale * delta_error[..., None] * np.matmul(probs, np.abs(k_full))               # (B,H,Nq,D)
    dk_floor = scale * np.matmul(np.swapaxes(probs * delta_error[..., None], -1, -2), np.abs(c.q))
    return dict(dq=float(dq_floor.max(initial=0.0)), dk=float(group * dk_floor.max(initial=0.0)), dv=0.0)


def reference64(case):
    """The oracle in float64: (out, lse, dq, dk, dv)."""
    c = case.astype(np.float64)
    out, lse = reference.attention_forward(c.q, c.k, c.v, **c.kwargs())
    grads = reference.attention_backward(c.dout, c.q, c.k, c.v, out, lse, **c.kwargs())
    return (out, lse) + tuple(grads)


def triton_run(case, dtype=None):
    """Kernel forward then backward from the kernel's own out and lse. dtype None: NumPy in the
    case's dtype; else torch tensors of that dtype on DEVICE."""
    if dtype is None:
        q, k, v, dout, mask = case.q, case.k, case.v, case.dout, case.key_padding_mask
    else:
        to = lambda x: torch.from_numpy(np.asarray(x, np.float64)).to(DEVICE, dtype)
        q, k, v, dout = (to(x) for x in (case.q, case.k, case.v, case.dout))
        mask = None if case.key_padding_mask is None else torch.from_numpy(case.key_padding_mask).to(DEVICE)
    out, lse = gpu.attention_forward(q, k, v, causal=case.causal, key_padding_mask=mask, scale=case.scale)
    grads = gpu.attention_backward(dout, q, k, v, out, lse, causal=case.causal, key_padding_mask=mask,
                                   scale=case.scale)
    return (out, lse) + tuple(grads)


NAMES = ("out", "lse", "dq", "dk", "dv")


def naive_torch(case, dtype):
    """A same-precision naive attention in torch (scores materialised, softmax in `dtype`) and
    its autograd backward: the yardstick of FlashAttention's low-precision error rule."""
    to = lambda x: torch.from_numpy(np.asarray(x, np.float64)).to(DEVICE, dtype).requires_grad_(True)
    q, k, v = to(case.q), to(case.k), to(case.v)
    dout = torch.from_numpy(case.dout).to(DEVICE, dtype)
    group = q.shape[1] // k.shape[1]
    k_full, v_full = k.repeat_interleave(group, 1), v.repeat_interleave(group, 1)
    allowed = torch.from_numpy(reference.visible_keys(q.shape[2], k.shape[2], case.causal,
                                                      case.key_padding_mask, q.shape[0])).to(DEVICE)
    scale = case.scale if case.scale is not None else 1.0 / np.sqrt(q.shape[-1])
    scores = (q @ k_full.transpose(-1, -2)) * scale
    scores = scores.masked_fill(~allowed, float("-inf"))
    row_max = scores.amax(-1, keepdim=True).detach()
    row_max = torch.where(torch.isfinite(row_max), row_max, torch.zeros_like(row_max))
    weights = torch.exp(scores - row_max)
    total = weights.sum(-1, keepdim=True)
    probs = weights / torch.where(total > 0, total, torch.ones_like(total))
    out = probs @ v_full
    lse = torch.where(total[..., 0] > 0, (row_max + torch.log(total))[..., 0], float("-inf"))
    out.backward(dout)
    return out.detach(), lse.detach(), q.grad, k.grad, v.grad


# ---------------------------------------------------------------------------------------------
# properties (both modes)

@EXAMPLES
@given(case=attention_cases(**SHAPES))
def test_float64_matches_reference(case):
    """float64 runs the kernels in fp64 end to end: agreement to ~1e-9 relative."""
    expected = reference64(case)
    got = triton_run(case)
    for name, x, ref in zip(NAMES, got, expected):
        assert isinstance(x, np.ndarray) and x.dtype == np.float64, name
        assert x.shape == ref.shape, name
        bound = 1e-9 * (1.0 + magnitude(ref))
        assert max_error(x, ref) <= bound, f"{name}: error {max_error(x, ref):.3g} > {bound:.3g}; {case.describe()}"


@EXAMPLES
@given(case=attention_cases(**SHAPES))
def test_float32_error_budget(case):
    """fp32 kernel error vs float64 <= 2x the fp32 reference's error (+ a floor of a few ulps)."""
    expected = reference64(case)
    c32 = case.astype(np.float32)
    out32, lse32 = reference.attention_forward(c32.q, c32.k, c32.v, **c32.kwargs())
    ref32 = (out32, lse32) + tuple(reference.attention_backward(c32.dout, c32.q, c32.k, c32.v, out32, lse32,
                                                                **c32.kwargs()))
    got = triton_run(c32)
    for name, x, ref_x, exact in zip(NAMES, got, ref32, expected):
        assert x.dtype == np.float32, name
        floor = rounding_floor(case, expected, np.finfo(np.float32).eps)
        kernel_error, reference_error = max_error(x, exact), max_error(ref_x, exact)
        assert kernel_error <= 2 * reference_error + floor, (
            f"{name}: kernel error {kernel_error:.3g} > 2 x reference fp32 error {reference_error:.3g} "
            f"+ {floor:.3g}; {case.describe()}")


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
@settings(max_examples=int(os.environ.get("MINILM_TRITON_EXAMPLES", "6")) if INTERPRETED else 25)
@given(case=attention_cases(**SHAPES, max_logit=10.0))
def test_low_precision_error_budget(case, dtype):
    """FlashAttention's rule: error vs float64 <= 2x (out, lse) and 3x (gradients) that of a naive
    same-precision implementation, plus one ulp of the largest value and, for dq and dk, twice the
    bound of what the rounded `out` costs in delta (delta_rounding_floor). Under the interpreter this
    checks the casts and masking; the compiled tensor-core path is only checked on a GPU."""
    expected = reference64(case)
    naive = naive_torch(case, dtype)
    got = triton_run(case, dtype)
    eps = torch.finfo(dtype).eps
    from_delta = delta_rounding_floor(case, eps)
    for name, x, naive_x, exact, factor in zip(NAMES, got, naive, expected, (2, 2, 3, 3, 3)):
        assert x.dtype == (torch.float32 if name == "lse" else dtype), name
        floor = eps * (1.0 + magnitude(exact)) + 2 * from_delta.get(name, 0.0)
        kernel_error, naive_error = max_error(x, exact), max_error(naive_x, exact)
        assert kernel_error <= factor * naive_error + floor, (
            f"{name} ({dtype}): kernel error {kernel_error:.3g} > {factor} x naive error {naive_error:.3g} "
            f"+ {floor:.3g}; {case.describe()}")


# ---------------------------------------------------------------------------------------------
# edge cases, written out (both modes)

def _case(batch=1, heads=2, kv_heads=1, seq_q=7, seq_k=19, head_dim=12, causal=True, mask=None, seed=0,
          amp=1.0, scale=None):
    from kernels.testing.strategies import AttentionCase
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((batch, heads, seq_q, head_dim)) * amp
    k = rng.standard_normal((batch, kv_heads, seq_k, head_dim)) * amp
    v = rng.standard_normal((batch, kv_heads, seq_k, head_dim))
    dout = rng.standard_normal((batch, heads, seq_q, head_dim))
    return AttentionCase(q, k, v, dout, mask, causal, scale, seed)


@pytest.mark.parametrize("seq_q, seq_k", [(7, 19), (19, 7), (17, 17), (1, 33), (33, 1)])
def test_causal_is_bottom_right_aligned(seq_q, seq_k):
    """Query i sees keys j <= i + Nk - Nq; with Nq > Nk the first Nq - Nk rows see nothing."""
    case = _case(seq_q=seq_q, seq_k=seq_k, causal=True)
    got, expected = triton_run(case), reference64(case)
    for name, x, ref in zip(NAMES, got, expected):
        assert max_error(x, ref) <= 1e-9 * (1 + magnitude(ref)), name
    hidden_rows = max(0, seq_q - seq_k)
    out, lse, dq = got[0], got[1], got[2]
    assert np.all(np.isneginf(lse[:, :, :hidden_rows])) and np.all(np.isfinite(lse[:, :, hidden_rows:]))
    assert np.all(out[:, :, :hidden_rows] == 0) and np.all(dq[:, :, :hidden_rows] == 0)


def test_fully_masked_rows_give_zero_output_and_gradients():
    """A batch row with every key padded: out 0, lse -inf, zero gradients, no NaN."""
    mask = np.zeros((2, 21), dtype=bool)
    mask[1] = True                      # batch 1: no visible key
    mask[0, -1] = True                  # batch 0: the last key padded
    case = _case(batch=2, heads=4, kv_heads=2, seq_q=9, seq_k=21, causal=False, mask=mask)
    out, lse, dq, dk, dv = triton_run(case)
    assert np.all(out[1] == 0) and np.all(np.isneginf(lse[1])) and np.all(dq[1] == 0)
    assert np.all(dk[1] == 0) and np.all(dv[1] == 0) and np.all(dk[0, :, -1] == 0) and np.all(dv[0, :, -1] == 0)
    for name, x, ref in zip(NAMES, (out, lse, dq, dk, dv), reference64(case)):
        assert max_error(x, ref) <= 1e-9 * (1 + magnitude(ref)), name


def test_large_logits_stay_finite():
    """|logits| in the hundreds: the online softmax must not overflow."""
    case = _case(seq_q=20, seq_k=33, head_dim=16, causal=False, amp=6.0, scale=1.0)
    for name, x, ref in zip(NAMES, triton_run(case.astype(np.float32)), reference64(case)):
        assert max_error(x, ref) <= 1e-3 * (1 + magnitude(ref)), name


@pytest.mark.parametrize("head_dim", [1, 3, 17, 33] + ([96, 129, 200, 256] if COMPILED_ON_GPU else []))
def test_head_dims_padded_to_a_power_of_two(head_dim):
    case = _case(seq_q=18, seq_k=23, head_dim=head_dim, causal=head_dim % 2 == 1)
    for name, x, ref in zip(NAMES, triton_run(case), reference64(case)):
        assert max_error(x, ref) <= 1e-9 * (1 + magnitude(ref)), name


def test_non_contiguous_inputs_and_dout():
    """Strided views (the (B, N, H, D) layout transposed, and a dout with a gap) need no copy."""
    case = _case(batch=2, heads=4, kv_heads=2, seq_q=19, seq_k=21, head_dim=20)
    to = lambda x: torch.from_numpy(np.ascontiguousarray(x.transpose(0, 2, 1, 3))).to(DEVICE).transpose(1, 2)
    q, k, v = to(case.q), to(case.k), to(case.v)
    wide = torch.zeros(case.dout.shape[:-1] + (2 * case.dout.shape[-1],), dtype=torch.float64, device=DEVICE)
    wide[..., ::2] = torch.from_numpy(case.dout).to(DEVICE)
    dout = wide[..., ::2]
    assert not (q.is_contiguous() or k.is_contiguous() or dout.is_contiguous())
    out, lse = gpu.attention_forward(q, k, v, causal=True)
    grads = gpu.attention_backward(dout, q, k, v, out, lse, causal=True)
    for name, x, ref in zip(NAMES, (out, lse) + tuple(grads), reference64(case)):
        assert max_error(x, ref) <= 1e-9 * (1 + magnitude(ref)), name


def test_backward_is_deterministic():
    """Same inputs, same bits (no atomics). The interpreter runs programs in order; the GPU race
    test below is the real check."""
    case = _case(batch=2, heads=4, kv_heads=1, seq_q=25, seq_k=30, head_dim=16).astype(np.float32)
    first, second = triton_run(case), triton_run(case)
    for name, a, b in zip(NAMES, first, second):
        assert np.array_equal(a, b), name


# ---------------------------------------------------------------------------------------------
# array kinds, dispatch and pairing with the reference (both modes)

def test_numpy_in_numpy_out_and_torch_in_torch_out():
    case = _case().astype(np.float32)
    out, lse = gpu.attention_forward(case.q, case.k, case.v, causal=True)
    assert isinstance(out, np.ndarray) and isinstance(lse, np.ndarray) and out.dtype == np.float32
    t = lambda x: torch.from_numpy(x)
    out_t, lse_t = gpu.attention_forward(t(case.q), t(case.k), t(case.v), causal=True)
    assert isinstance(out_t, torch.Tensor) and out_t.device.type == "cpu" and out_t.dtype == torch.float32
    assert lse_t.dtype == torch.float32
    np.testing.assert_array_equal(out_t.numpy(), out)
    grads = gpu.attention_backward(t(case.dout), t(case.q), t(case.k), t(case.v), out_t, lse_t, causal=True)
    assert all(isinstance(g, torch.Tensor) and g.device.type == "cpu" for g in grads)


def test_aliased_numpy_views():
    """q, k and v may be views of one array (k = q[:, :1] starts where q starts)."""
    q = np.random.default_rng(5).standard_normal((1, 2, 5, 8))
    k = v = q[:, :1]
    out, lse = gpu.attention_forward(q, k, v, causal=True)
    ref_out, ref_lse = reference.attention_forward(q, k, v, causal=True)
    assert max_error(out, ref_out) <= 1e-12 and max_error(lse, ref_lse) <= 1e-12


def test_dispatch_and_pairing_with_the_reference():
    """backend="triton" in kernels, and any backend's forward pairs with any backend's backward."""
    case = _case(batch=2, heads=2, kv_heads=2, seq_q=11, seq_k=13)
    out, lse = kernels.attention_forward(case.q, case.k, case.v, causal=True, backend="triton")
    ref_out, ref_lse = reference.attention_forward(case.q, case.k, case.v, causal=True)
    expected = reference.attention_backward(case.dout, case.q, case.k, case.v, ref_out, ref_lse, causal=True)
    mixed_1 = kernels.attention_backward(case.dout, case.q, case.k, case.v, ref_out, ref_lse, causal=True,
                                         backend="triton")
    mixed_2 = reference.attention_backward(case.dout, case.q, case.k, case.v, out, lse, causal=True)
    for a, b, c in zip(mixed_1, mixed_2, expected):
        assert max_error(a, c) <= 1e-9 * (1 + magnitude(c)) and max_error(b, c) <= 1e-9 * (1 + magnitude(c))
    assert "triton" in kernels.available_backends()


# ---------------------------------------------------------------------------------------------
# bad input: rejected like the reference does, with a message that names the argument

BAD_INPUTS = {
    "q 3-D": lambda c: dict(q=c.q[0]),
    "k head dim": lambda c: dict(k=c.k[..., :-1], v=c.v[..., :-1]),
    "v shape": lambda c: dict(v=c.v[:, :, :-1]),
    "Hkv not dividing H": lambda c: dict(k=np.concatenate([c.k] * 3, 1), v=np.concatenate([c.v] * 3, 1)),
    "mask shape": lambda c: dict(key_padding_mask=np.zeros((c.q.shape[0], c.k.shape[2] + 1), bool)),
    "mask dtype": lambda c: dict(key_padding_mask=np.zeros((c.q.shape[0], c.k.shape[2]), np.int64)),
    "int dtype": lambda c: dict(q=c.q.astype(np.int32)),
    "mixed dtypes": lambda c: dict(k=c.k.astype(np.float32)),
    "NaN": lambda c: dict(q=np.where(np.arange(c.q.shape[-1]) == 2, np.nan, c.q)),
}


@pytest.mark.parametrize("bad", sorted(BAD_INPUTS))
def test_bad_input_is_rejected_like_the_reference(bad):
    case = _case(heads=2, kv_heads=2)
    args = dict(q=case.q, k=case.k, v=case.v, key_padding_mask=None, causal=True)
    args.update(BAD_INPUTS[bad](case))
    with pytest.raises(KernelInputError) as ours:
        gpu.attention_forward(**args)
    with pytest.raises(KernelInputError) as theirs:
        reference.attention_forward(**args)
    strip = lambda e: str(e.value).split(": ", 1)[1]
    if "dtype" not in bad:          # the allowed dtype lists differ (fp16/bf16 only here)
        assert strip(ours) == strip(theirs)


def test_backward_bad_shapes_and_kinds():
    case = _case()
    out, lse = gpu.attention_forward(case.q, case.k, case.v, causal=True)
    with pytest.raises(KernelInputError, match="lse must be"):
        gpu.attention_backward(case.dout, case.q, case.k, case.v, out, lse[..., :-1], causal=True)
    with pytest.raises(KernelInputError, match="dout must be"):
        gpu.attention_backward(case.dout[:, :, :-1], case.q, case.k, case.v, out, lse, causal=True)
    with pytest.raises(KernelInputError, match="mix of NumPy arrays and torch tensors"):
        gpu.attention_forward(torch.from_numpy(case.q), case.k, case.v)
    with pytest.raises(KernelInputError, match="input_precision"):
        gpu.attention_forward(case.q, case.k, case.v, input_precision="fast")


# ---------------------------------------------------------------------------------------------
# GPU only (compiled kernels)

@pytest.mark.gpu
@requires_gpu
def test_backward_has_no_races_gpu():
    """60 repeats of the backward on batch 16 give identical bits (no atomics, fixed GQA order)."""
    case = _case(batch=16, heads=8, kv_heads=2, seq_q=500, seq_k=700, head_dim=64, causal=True)
    to = lambda x: torch.from_numpy(x).to(DEVICE, torch.bfloat16)
    q, k, v, dout = (to(x) for x in (case.q, case.k, case.v, case.dout))
    out, lse = gpu.attention_forward(q, k, v, causal=True)
    first = gpu.attention_backward(dout, q, k, v, out, lse, causal=True)
    for _ in range(60):
        again = gpu.attention_backward(dout, q, k, v, out, lse, causal=True)
        for name, a, b in zip(("dq", "dk", "dv"), first, again):
            assert torch.equal(a.view(torch.int16), b.view(torch.int16)), name


@pytest.mark.gpu
@requires_gpu
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
@pytest.mark.parametrize("seq_q, seq_k, head_dim, causal", [(1024, 1024, 64, True), (777, 1500, 128, True),
                                                           (1500, 513, 96, False), (640, 640, 256, True)])
def test_low_precision_large_shapes_gpu(dtype, seq_q, seq_k, head_dim, causal):
    mask = np.zeros((2, seq_k), bool)
    mask[1, -37:] = True
    case = _case(batch=2, heads=4, kv_heads=2, seq_q=seq_q, seq_k=seq_k, head_dim=head_dim, causal=causal,
                 mask=mask, amp=1.5)
    expected, naive, got = reference64(case), naive_torch(case, dtype), triton_run(case, dtype)
    from_delta = delta_rounding_floor(case, torch.finfo(dtype).eps)
    for name, x, naive_x, exact, factor in zip(NAMES, got, naive, expected, (2, 2, 3, 3, 3)):
        floor = torch.finfo(dtype).eps * (1.0 + magnitude(exact)) + 2 * from_delta.get(name, 0.0)
        assert max_error(x, exact) <= factor * max_error(naive_x, exact) + floor, name


@pytest.mark.gpu
@requires_gpu
@pytest.mark.parametrize("input_precision", ["ieee", "tf32"])
def test_float32_large_shapes_and_non_contiguous_dout_gpu(input_precision):
    case = _case(batch=2, heads=8, kv_heads=4, seq_q=1000, seq_k=1200, head_dim=128, causal=True)
    expected = reference64(case)
    to = lambda x: torch.from_numpy(x).to(DEVICE, torch.float32)
    q, k, v = to(case.q), to(case.k), to(case.v)
    dout = to(case.dout.transpose(0, 2, 1, 3).copy()).transpose(1, 2)          # (B, N, H, D) storage
    assert not dout.is_contiguous()
    out, lse = gpu.attention_forward(q, k, v, causal=True, input_precision=input_precision)
    grads = gpu.attention_backward(dout, q, k, v, out, lse, causal=True, input_precision=input_precision)
    bound = 2e-5 if input_precision == "ieee" else 2e-2                        # tf32: 10-bit mantissa
    for name, x, ref in zip(NAMES, (out, lse) + tuple(grads), expected):
        assert max_error(x, ref) <= bound * (1 + magnitude(ref)), name
