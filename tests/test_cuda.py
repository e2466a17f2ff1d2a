"""``tg.cuda``: synchronize and the memory statistics (PyTorch's names and answers).

Without a GPU they answer as PyTorch's do before CUDA is initialised (0 bytes, and a
RuntimeError from ``synchronize``); the peak arithmetic is checked on made-up pool
events; the ``gpu`` tests check the numbers against arrays of known size on a GPU.
"""

from __future__ import annotations

import gc

import pytest

import tensorgrad as tg
from tensorgrad.cuda import _PeakCounter

MiB = 1 << 20
no_cuda = pytest.mark.skipif(tg.cuda.is_available(), reason="needs a machine without CUDA")


@no_cuda
def test_memory_statistics_are_zero_without_cuda():
    assert tg.cuda.memory_allocated() == 0
    assert tg.cuda.max_memory_allocated() == 0
    assert tg.cuda.memory_allocated("cuda:0") == 0
    assert tg.cuda.reset_peak_memory_stats() is None


@no_cuda
def test_synchronize_without_cuda_says_why():
    with pytest.raises(RuntimeError) as e:
        tg.cuda.synchronize()
    assert "CUDA is not available" in str(e.value)
    assert tg.cuda.unavailable_reason() in str(e.value)


def test_the_peak_follows_malloc_and_free_events_per_device():
    c = _PeakCounter()
    c.start(0, 100)
    c.malloc_postprocess(device_id=0, size=500, mem_size=512, mem_ptr=1, pmem_id=1)
    c.malloc_postprocess(device_id=0, size=1000, mem_size=1024, mem_ptr=2, pmem_id=2)
    c.free_postprocess(device_id=0, mem_size=512, mem_ptr=1, pmem_id=1)
    c.malloc_postprocess(device_id=1, size=10, mem_size=512, mem_ptr=3, pmem_id=3)
    assert c.current == {0: 100 + 1024, 1: 512}
    assert c.peak == {0: 100 + 512 + 1024, 1: 512}
    c.free_postprocess(device_id=0, mem_size=1024, mem_ptr=2, pmem_id=2)
    assert c.current[0] == 100 and c.peak[0] == 1636


@pytest.mark.gpu
def test_memory_allocated_counts_a_tensor_and_its_release():
    tg.cuda.synchronize()
    before = tg.cuda.memory_allocated()
    t = tg.zeros(16 * MiB // 4, device="cuda")  # 16 MiB of float32
    assert tg.cuda.memory_allocated() - before == 16 * MiB
    assert tg.cuda.memory_allocated(0) == tg.cuda.memory_allocated("cuda:0")
    del t
    gc.collect()
    assert tg.cuda.memory_allocated() == before


@pytest.mark.gpu
def test_the_peak_sees_a_temporary_and_reset_starts_it_over():
    tg.cuda.reset_peak_memory_stats()
    base = tg.cuda.memory_allocated()
    assert tg.cuda.max_memory_allocated() == base
    tmp = tg.ones(32 * MiB // 4, device="cuda")  # 32 MiB, gone before the query
    del tmp
    gc.collect()
    assert tg.cuda.memory_allocated() == base
    assert tg.cuda.max_memory_allocated() >= base + 32 * MiB
    tg.cuda.reset_peak_memory_stats()
    assert tg.cuda.max_memory_allocated() == base


@pytest.mark.gpu
def test_synchronize_waits_and_returns_none():
    x = tg.randn(512, 512, device="cuda")
    y = x @ x
    assert tg.cuda.synchronize() is None and tg.cuda.synchronize("cuda:0") is None
    assert y.shape == (512, 512)
