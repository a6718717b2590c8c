"""Triton matmul (kernels.gpu.matmul) against the float64 NumPy reference.

Runs through Triton's interpreter when no GPU is visible (tests/kernels/conftest.py), compiled on
a GPU. Both modes: float64 exact, fp32 error budget (input_precision="ieee"), fp16/bf16 error
budget vs torch.matmul in the same precision, non-contiguous operands, ragged edges, bad input,
NumPy/torch kinds, dispatch. Interpreter only: fp32 with the default "tf32" is exact there
(the interpreter has no tf32). GPU only (@pytest.mark.gpu): tf32 within its 10-bit-mantissa
bound, large sizes, determinism across repeats.
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
from kernels.testing.strategies import matmul_cases  # noqa: E402

gpu = pytest.importorskip("kernels.gpu", reason="kernels.gpu needs triton and torch (the gpu extra)")

INTERPRETED = gpu.interpreter_mode()
COMPILED_ON_GPU = (not INTERPRETED) and gpu.cuda_available()
if not gpu.is_usable():
    pytest.skip("Triton kernels cannot launch here: no CUDA GPU and TRITON_INTERPRET was not set "
                "before kernels.gpu was imported", allow_module_level=True)
pytestmark = [pytest.mark.interpreter] if INTERPRETED else []
requires_gpu = pytest.mark.skipif(not COMPILED_ON_GPU, reason="needs a CUDA GPU with compiled Triton kernels "
                                  "(this run uses the interpreter or has no GPU)")
interpreter_only = pytest.mark.skipif(not INTERPRETED, reason="property of Triton's interpreter (no tf32)")
DEVICE = "cuda" if COMPILED_ON_GPU else "cpu"
MAX_DIM = 100 if INTERPRETED else 700
EXAMPLES = settings(max_examples=int(os.environ.get("MINILM_TRITON_EXAMPLES", "10"))) if INTERPRETED else settings()


def max_error(x, expected) -> float:
    x = x.detach().to("cpu", torch.float64).numpy() if isinstance(x, torch.Tensor) else np.asarray(x, np.float64)
    assert not np.isnan(x).any()
    return float(np.abs(x - expected).max(initial=0.0))


def floor(a, b, eps) -> float:
    """A few ulps of the largest partial sums: sum_k |a_ik| |b_kj|."""
    return 4 * eps * float((np.abs(a.astype(np.float64)) @ np.abs(b.astype(np.float64))).max(initial=0.0))


@EXAMPLES
@given(case=matmul_cases(max_dim=MAX_DIM))
def test_float64_matches_reference(case):
    a, b = case
    got = gpu.matmul(a, b)
    assert isinstance(got, np.ndarray) and got.dtype == np.float64 and got.shape == (a.shape[0], b.shape[1])
    assert max_error(got, reference.matmul(a, b)) <= floor(a, b, np.finfo(np.float64).eps)


@EXAMPLES
@given(case=matmul_cases(max_dim=MAX_DIM, dtype=np.float32))
def test_float32_error_budget(case):
    """ieee fp32: error vs float64 <= 2x that of NumPy's fp32 product + a few ulps."""
    a, b = case
    exact = reference.matmul(a.astype(np.float64), b.astype(np.float64))
    got = gpu.matmul(a, b, input_precision="ieee")
    assert got.dtype == np.float32
    assert max_error(got, exact) <= 2 * max_error(a @ b, exact) + floor(a, b, np.finfo(np.float32).eps)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
@settings(max_examples=int(os.environ.get("MINILM_TRITON_EXAMPLES", "6")) if INTERPRETED else 25)
@given(case=matmul_cases(max_dim=MAX_DIM))
def test_low_precision_error_budget(case, dtype):
    """fp16/bf16 with fp32 accumulation: error vs float64 <= 2x torch.matmul's in the same dtype
    + one ulp of the largest partial sum."""
    a, b = case
    ta = torch.from_numpy(np.ascontiguousarray(a)).to(DEVICE, dtype)
    tb = torch.from_numpy(np.ascontiguousarray(b)).to(DEVICE, dtype)
    exact = reference.matmul(ta.double().cpu().numpy(), tb.double().cpu().numpy())   # of the rounded inputs
    got = gpu.matmul(ta, tb)
    assert isinstance(got, torch.Tensor) and got.dtype == dtype and got.device == ta.device
    eps = torch.finfo(dtype).eps
    assert max_error(got, exact) <= 2 * max_error(ta @ tb, exact) + floor(a, b, eps) / 4


@pytest.mark.parametrize("m, k, n", [(1, 1, 1), (1, 37, 1), (33, 1, 17), (31, 33, 65), (64, 16, 32)])
def test_ragged_edges(m, k, n):
    rng = np.random.default_rng(m * 1000 + k * 10 + n)
    a, b = rng.standard_normal((m, k)), rng.standard_normal((k, n))
    assert max_error(gpu.matmul(a, b), a @ b) <= floor(a, b, np.finfo(np.float64).eps)


def test_strided_views_and_torch_kinds():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((50, 72))[::2, 1::3]                 # (25, 24), strided
    b = rng.standard_normal((40, 24)).T[:, ::-1]                # (24, 40), transposed, negative stride
    assert max_error(gpu.matmul(a, b), a @ b) <= floor(a, b, np.finfo(np.float64).eps)
    ta = torch.from_numpy(np.ascontiguousarray(a.T)).t()         # torch views with strides (1, M)
    tb = torch.from_numpy(np.ascontiguousarray(b.T)).t()
    assert not ta.is_contiguous() and not tb.is_contiguous()
    got = gpu.matmul(ta, tb)
    assert isinstance(got, torch.Tensor) and got.device.type == "cpu" and got.dtype == torch.float64
    assert max_error(got, a @ b) <= floor(a, b, np.finfo(np.float64).eps)


def test_dispatch():
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((20, 30)), rng.standard_normal((30, 10))
    assert max_error(kernels.matmul(a, b, backend="triton"), a @ b) <= floor(a, b, np.finfo(np.float64).eps)


@pytest.mark.parametrize("a_shape, b_shape, a_dtype, b_dtype, match", [
    ((3, 4, 5), (5, 2), np.float64, np.float64, "must be 2-D"),
    ((3, 4), (5, 2), np.float64, np.float64, "inner dimensions differ"),
    ((3, 4), (4, 2), np.float64, np.float32, "they must match"),
    ((3, 4), (4, 2), np.int64, np.int64, "must have dtype in"),
])
def test_bad_input(a_shape, b_shape, a_dtype, b_dtype, match):
    a, b = np.ones(a_shape, a_dtype), np.ones(b_shape, b_dtype)
    with pytest.raises(KernelInputError, match=match):
        gpu.matmul(a, b)
    with pytest.raises(KernelInputError):
        reference.matmul(a, b)


def test_nan_and_bad_precision_are_rejected():
    a = np.ones((3, 4))
    a[1, 2] = np.nan
    with pytest.raises(KernelInputError, match="NaN/inf"):
        gpu.matmul(a, np.ones((4, 2)))
    with pytest.raises(KernelInputError, match="input_precision"):
        gpu.matmul(np.ones((3, 4)), np.ones((4, 2)), input_precision="tf64")


@interpreter_only
def test_interpreter_has_no_tf32():
    """Under the interpreter the default "tf32" is exact fp32 (on a GPU it is not: see the GPU test)."""
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((40, 50), np.float32), rng.standard_normal((50, 30), np.float32)
    np.testing.assert_array_equal(gpu.matmul(a, b), gpu.matmul(a, b, input_precision="ieee"))


@pytest.mark.gpu
@requires_gpu
@pytest.mark.parametrize("size", [1000, 2048, 4097])
def test_large_tf32_and_ieee_gpu(size):
    rng = np.random.default_rng(size)
    a, b = rng.standard_normal((size, size - 3), np.float32), rng.standard_normal((size - 3, size + 5), np.float32)
    exact = a.astype(np.float64) @ b.astype(np.float64)
    ieee = gpu.matmul(a, b, input_precision="ieee")
    assert max_error(ieee, exact) <= 2 * max_error(a @ b, exact) + floor(a, b, np.finfo(np.float32).eps)
    tf32 = gpu.matmul(a, b)                              # default: tf32, a 10-bit mantissa
    assert max_error(tf32, exact) <= 4 * 2.0 ** -11 * float((np.abs(a) @ np.abs(b)).max())


@pytest.mark.gpu
@requires_gpu
def test_repeats_are_bitwise_identical_gpu():
    a = torch.randn(3000, 2500, device=DEVICE, dtype=torch.bfloat16)
    b = torch.randn(2500, 3500, device=DEVICE, dtype=torch.bfloat16)
    first = gpu.matmul(a, b)
    for _ in range(20):
        assert torch.equal(gpu.matmul(a, b).view(torch.int16), first.view(torch.int16))
