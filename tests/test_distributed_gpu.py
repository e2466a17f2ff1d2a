"""tensorgrad.distributed on a real GPU: NCCL, with one rank (NCCL refuses two ranks on
one GPU; the machines with a GPU here have one). Skipped without a GPU; the checks on
several ranks, and on CUDA tensors of the CuPy stand-in, are in tests/test_distributed.py.
"""

from __future__ import annotations

import pytest
from test_distributed import DEVICE_CHECKS, run_mpi


@pytest.mark.gpu
def test_nccl_on_one_gpu():
    code, out, _ = run_mpi(1, "device", timeout=120)
    assert code == 0, out
    assert "rank 0 nccl available: True" in out, out
    for name in DEVICE_CHECKS:
        assert f"rank 0 ok {name} [cuda:0]" in out, out
