"""``tensorgrad.kernels``: the dispatch test and the lazily compiled sources.
(That every source compiles is ``test_kernels_compile.py``.)"""

from __future__ import annotations

import numpy as np
import pytest

from tensorgrad import backend, kernels
from tensorgrad.backends import cuda as cuda_settings

pytestmark = pytest.mark.cpu_only  # no device: compilers, files, fakes


def test_host_arrays_never_take_a_kernel():
    assert kernels.use_kernel(np.zeros(3, np.float32)) is False


def test_the_stand_in_or_disabled_kernels_take_the_generic_path(monkeypatch):
    class FakeCupy:  # a CuPy whose arrays are this class, with or without RawModule
        ndarray = np.ndarray
        RawModule = object

    monkeypatch.setattr(backend, "_cupy", FakeCupy)
    a = np.zeros(3, np.float32)  # "a device array" of the fake module
    monkeypatch.setattr(cuda_settings, "kernels", False)  # the default: not verified yet
    assert kernels.use_kernel(a) is False
    monkeypatch.setattr(cuda_settings, "kernels", True)  # tg.backends.cuda.kernels = True
    assert kernels.use_kernel(a) is True
    with kernels.disabled():
        assert kernels.use_kernel(a) is False
    assert kernels.use_kernel(a) is True  # restored
    FakeCupy.__tensorgrad_standin__ = True  # the test suite's stand-in runs no kernels
    assert kernels.use_kernel(a) is False
    del FakeCupy.__tensorgrad_standin__
    del FakeCupy.RawModule
    assert kernels.use_kernel(a) is False


def test_a_source_compiles_on_first_use_only_and_once(monkeypatch):
    made = []

    class FakeModule:
        def __init__(self, code, options):
            made.append((code, options))

        def get_function(self, name):
            return f"kernel {name}"

    class FakeCupy:
        RawModule = staticmethod(lambda code, options: FakeModule(code, options))

    code = 'extern "C" __global__ void twice(float* x) { x[0] *= 2.0f; }'
    src = kernels.CudaSource("test-only-lazy", code, functions=("twice",), options=("-DX",))
    try:
        assert made == []  # declaring compiles nothing
        monkeypatch.setattr(backend, "_cupy", FakeCupy)
        assert src.function("twice") == "kernel twice"
        assert src.function("twice") == "kernel twice"
        assert made == [(code, ("-DX",))]
        with pytest.raises(ValueError, match="no kernel 'thrice'"):
            src.function("thrice")
    finally:
        del kernels.SOURCES["test-only-lazy"]


def test_a_kernel_without_cupy_says_so(monkeypatch):
    src = kernels.CudaSource("test-only-nocupy", 'extern "C" __global__ void k() {}',
                             functions=("k",))
    try:
        monkeypatch.setattr(backend, "_cupy", None)
        with pytest.raises(RuntimeError, match="needs CuPy"):
            src.function("k")
    finally:
        del kernels.SOURCES["test-only-nocupy"]


def test_every_scatter_with_atomics_is_listed_as_non_deterministic():
    """docs/how-it-works.md lists the files whose ops scatter-add with ``xp.add.at``
    (a float atomic add on CuPy); a new one must join the list."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    scatters = set()
    for package in ("tensorgrad", "nn", "models"):
        for path in (root / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if (isinstance(node, ast.Attribute) and node.attr == "at"
                        and isinstance(node.value, ast.Attribute) and node.value.attr == "add"):
                    scatters.add(str(path.relative_to(root)))
    assert "tensorgrad/ops/pool.py" in scatters  # the scan finds the known ones
    guide = (root / "docs" / "how-it-works.md").read_text()
    listed = guide[guide.index("**Non-deterministic on a GPU.**"):]
    listed = listed.split("\n\n")[0]
    assert sorted(f for f in scatters if f"`{f}`" not in listed) == []
