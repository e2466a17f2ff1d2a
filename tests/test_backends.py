"""``tg.backends.cuda.matmul.allow_tf32``: PyTorch's name, off by default, and on a GPU
it changes what cuBLAS computes for float32 (checked against a float64 product)."""

from __future__ import annotations

import numpy as np
import pytest

import tensorgrad as tg
from tensorgrad.backends import cuda as backends_cuda


@pytest.fixture
def restore_tf32():
    before = tg.backends.cuda.matmul.allow_tf32
    yield
    tg.backends.cuda.matmul.allow_tf32 = before


def test_the_flag_is_off_unless_cupy_tf32_asks(monkeypatch):
    monkeypatch.delenv("CUPY_TF32", raising=False)
    assert backends_cuda._Matmul().allow_tf32 is False
    monkeypatch.setenv("CUPY_TF32", "0")
    assert backends_cuda._Matmul().allow_tf32 is False
    monkeypatch.setenv("CUPY_TF32", "1")
    assert backends_cuda._Matmul().allow_tf32 is True


def test_setting_the_flag_round_trips(restore_tf32):
    tg.backends.cuda.matmul.allow_tf32 = True
    assert tg.backends.cuda.matmul.allow_tf32 is True
    tg.backends.cuda.matmul.allow_tf32 = False
    assert tg.backends.cuda.matmul.allow_tf32 is False


def test_the_flag_takes_only_a_bool_and_no_misspelled_setting(restore_tf32):
    tg.backends.cuda.matmul.allow_tf32 = False
    with pytest.raises(TypeError, match="bool"):
        tg.backends.cuda.matmul.allow_tf32 = 1
    assert tg.backends.cuda.matmul.allow_tf32 is False
    with pytest.raises(AttributeError, match="allow_fp32"):
        tg.backends.cuda.matmul.allow_fp32 = True


@pytest.mark.gpu
def test_tf32_changes_the_float32_gemm_and_off_keeps_float32(restore_tf32):
    cupy = pytest.importorskip("cupy")
    from cupy._core import _routines_linalg as linalg

    rng = np.random.default_rng(0)
    a = rng.standard_normal((1024, 1024)).astype(np.float32)
    b = rng.standard_normal((1024, 1024)).astype(np.float32)
    exact = a.astype(np.float64) @ b.astype(np.float64)
    ta, tb = tg.tensor(a, device="cuda"), tg.tensor(b, device="cuda")

    tg.backends.cuda.matmul.allow_tf32 = False
    assert linalg.get_compute_type(cupy.float32) == linalg.COMPUTE_TYPE_DEFAULT
    err_fp32 = np.abs((ta @ tb).numpy() - exact).max()
    # float32 products summed over 1024 terms of size ~1: errors of ~1e-4
    assert err_fp32 < 2e-3, err_fp32
    if int(cupy.cuda.Device().compute_capability) < 80:
        pytest.skip("TF32 needs sm_80 or later")
    tg.backends.cuda.matmul.allow_tf32 = True
    assert linalg.get_compute_type(cupy.float32) == linalg.COMPUTE_TYPE_TF32
    err_tf32 = np.abs((ta @ tb).numpy() - exact).max()
    # a 10-bit mantissa (relative 2^-11 per product): errors of ~1e-2
    assert err_tf32 > 2e-3, err_tf32
