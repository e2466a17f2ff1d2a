"""The host-memory policy of tensorgrad/host_memory.py: freed buffers are reused."""

import os
import subprocess
import sys

import pytest

from tensorgrad import host_memory

pytestmark = pytest.mark.cpu_only  # the host's allocator

glibc = pytest.mark.skipif(not host_memory._glibc(), reason="mallopt is glibc's")

# Allocate, touch and free two 8 MiB arrays a number of times, as a batch-norm step
# does, and print the page faults per round after the first.
_ROUNDS = r"""
import resource, sys
import numpy as np
try:  # count 4 KiB faults where the kernel lets NumPy ask for huge pages
    np._core.multiarray._set_madvise_hugepage(False)
except AttributeError:
    pass
if sys.argv[1] == "1":
    import tensorgrad
    assert tensorgrad.host_memory.applied
def one_round():
    a = np.ones(2 << 20, dtype=np.float32)
    b = a * 2.0
    del b, a
one_round()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    one_round()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20)
"""


def _faults_per_round(with_tensorgrad: bool, **env) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")} | env
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    out = subprocess.run([sys.executable, "-c", _ROUNDS, "1" if with_tensorgrad else "0"],
                         env=env, capture_output=True, text=True, check=True).stdout
    return float(out.split()[-1])


@glibc
def test_importing_tensorgrad_keeps_freed_buffers_for_reuse():
    # the control: plain NumPy lands every round on fresh pages, faulted in on touch
    # (about a thousand 4 KiB faults; a handful where the system hands out huge pages) ...
    control = _faults_per_round(False)
    assert control >= 4
    # ... and with tensorgrad imported the buffers of the previous round are reused
    assert _faults_per_round(True) <= control / 10


@glibc
def test_opting_out_leaves_malloc_alone(monkeypatch):
    monkeypatch.setenv("TG_KEEP_HOST_MEMORY", "0")
    assert host_memory.keep_host_memory() is False
    monkeypatch.delenv("TG_KEEP_HOST_MEMORY")
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "1000")
    assert host_memory.keep_host_memory() is False
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_")
    assert host_memory.keep_host_memory() is True
