"""Numba matmul (kernels.cpu.matmul) against the float64 product.

Errors are measured against |a| @ |b|, the size of the terms each entry sums (cancellation can
make an entry itself arbitrarily small). float64: 1e-10 of that. float32: at most twice the error
of numpy's own float32 product (OpenBLAS), plus a floor of a few ulps.
"""
import numpy as np
import pytest
from hypothesis import given

pytest.importorskip("numba")

import kernels                                       # noqa: E402
from kernels import cpu                              # noqa: E402
from kernels.errors import KernelInputError          # noqa: E402
from kernels.testing.strategies import matmul_cases  # noqa: E402

FLOAT32_ULP = float(np.finfo(np.float32).eps)


def relative_error(got, a, b):
    """max |got - a @ b| / (|a| @ |b|), all in float64."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    exact = a64 @ b64
    terms = np.abs(a64) @ np.abs(b64)
    return float(np.max(np.abs(got.astype(np.float64) - exact) / np.maximum(terms, 1e-300), initial=0.0))


@given(matmul_cases(max_dim=320, dtype=np.float64))      # K > 256: several depth blocks
def test_float64_matches(case):
    a, b = case
    got = cpu.matmul(a, b)
    assert got.shape == (a.shape[0], b.shape[1]) and got.dtype == np.float64
    assert relative_error(got, a, b) <= 1e-10


@given(matmul_cases(max_dim=200, dtype=np.float32))
def test_float32_within_error_budget(case):
    a, b = case
    got = cpu.matmul(a, b)
    assert got.dtype == np.float32
    kernel_error = relative_error(got, a, b)
    numpy_error = relative_error(np.matmul(a, b), a, b)
    assert kernel_error <= 2 * numpy_error + 4 * FLOAT32_ULP, (kernel_error, numpy_error, a.shape, b.shape)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_several_depth_blocks_tiles_and_strides(dtype):
    """Depth > the 256 block (several passes accumulate into c), edge tiles, strided views."""
    rng = np.random.default_rng(0)
    tolerance = 1e-12 if dtype == np.float64 else 4e-6
    for m, k, n in [(131, 600, 67), (1, 513, 1), (65, 257, 129), (300, 1, 5)]:
        a = rng.standard_normal((m, k)).astype(dtype)
        b = rng.standard_normal((k, n)).astype(dtype)
        assert relative_error(cpu.matmul(a, b), a, b) <= tolerance
    big_a = rng.standard_normal((200, 300)).astype(dtype)
    big_b = rng.standard_normal((330, 90)).astype(dtype)
    a, b = big_a[::2, 1::2], big_b[:300:2, ::3]                         # neither C nor F contiguous
    assert not (a.flags.c_contiguous or a.flags.f_contiguous)
    assert relative_error(cpu.matmul(a, b), a, b) <= tolerance
    assert relative_error(cpu.matmul(b.T, a.T), b.T, a.T) <= tolerance


def test_empty_inner_dimension_gives_zeros():
    a, b = np.zeros((3, 0), np.float32), np.zeros((0, 4), np.float32)
    assert np.array_equal(cpu.matmul(a, b), np.zeros((3, 4), np.float32))
    assert cpu.matmul(np.zeros((0, 5)), np.zeros((5, 2))).shape == (0, 2)


def test_does_not_modify_inputs_and_dispatches():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((70, 80)), rng.standard_normal((80, 90))
    a_before, b_before = a.copy(), b.copy()
    got = kernels.matmul(a, b, backend="numba")
    assert np.array_equal(a, a_before) and np.array_equal(b, b_before)
    assert relative_error(got, a, b) <= 1e-12


def test_bad_inputs_name_the_argument():
    a = np.zeros((3, 4), np.float32)
    with pytest.raises(KernelInputError, match=r"must be 2-D"):
        cpu.matmul(a[0], a.T)
    with pytest.raises(KernelInputError, match=r"inner dimensions differ.*K=4; got b\(3, 4\)"):
        cpu.matmul(a, a)
    with pytest.raises(KernelInputError, match="b has dtype float64 but a has float32"):
        cpu.matmul(a, a.T.astype(np.float64))
    with pytest.raises(KernelInputError, match="dtype in"):
        cpu.matmul(a.astype(np.int64), a.T.astype(np.int64))
