"""The CuPy stand-in of ``tests/standin`` (the fake "cuda" device of make test's second
pass): it accepts and refuses what CuPy does, has only CuPy's names, counts transfers.

The accept/refuse rules run against the stand-in everywhere and against the real CuPy
on a GPU (``gpu``), so the stand-in cannot drift from CuPy unnoticed. In the first pass
the stand-in is imported under another name, beside the real CuPy.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tensorgrad import backend

TESTS = Path(__file__).resolve().parent
STANDIN = TESTS / "standin"


def _load(name: str, package: Path):
    """Import the package in folder ``package`` as ``name``."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, package / "__init__.py", submodule_search_locations=[str(package)])
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


# the stand-in: ``cupy`` itself in the second pass, else imported beside the real CuPy
if getattr(backend._cupy, "__tensorgrad_standin__", False):
    standin = backend._cupy
else:
    standin = _load("cupy_standin", STANDIN / "cupy")
standin_cupyx = _load("cupyx_standin", STANDIN / "cupyx")


@pytest.fixture(params=["standin", pytest.param("cupy", marks=pytest.mark.gpu)])
def xp(request):
    """The module whose rules are checked: the stand-in, or the real CuPy on a GPU."""
    return standin if request.param == "standin" else backend._cupy


# ------------------------------------------------------------ CuPy's rules, both sides


def test_a_device_array_is_not_a_numpy_array_and_refuses_implicit_conversion(xp):
    a = xp.arange(6.0).reshape(2, 3)
    assert not isinstance(a, np.ndarray) and isinstance(a, xp.ndarray)
    with pytest.raises(TypeError):
        np.asarray(a)
    with pytest.raises(TypeError):
        np.array([a[0, 0], a[0, 1]])


@pytest.mark.parametrize("op", [
    lambda xp, a, h: a + h, lambda xp, a, h: h * a, lambda xp, a, h: xp.maximum(a, h),
    lambda xp, a, h: xp.add(a, h), lambda xp, a, h: a @ h.reshape(3, 1),
    lambda xp, a, h: xp.where(h > 0, a, a), lambda xp, a, h: xp.concatenate([a, h[None]]),
    lambda xp, a, h: xp.multiply(a, [1.0, 2.0, 3.0]),  # a list is host data too
], ids=["add", "radd", "maximum", "ufunc", "matmul", "where", "concatenate", "list"])
def test_host_arrays_are_refused_as_operands(xp, op):
    a = xp.ones((2, 3))
    with pytest.raises(TypeError):
        op(xp, a, np.ones(3))


def test_python_and_numpy_scalars_are_fine_and_keep_float32(xp):
    a = xp.ones(3, dtype=np.float32)
    for r in (a + 1.5, a * np.float32(2), 2 ** a, xp.maximum(a, 0)):
        assert isinstance(r, xp.ndarray) and r.dtype == np.float32


def test_reductions_and_scalar_indexing_give_0d_device_arrays(xp):
    a = xp.arange(6.0).reshape(2, 3)
    for r in (a.sum(), a.max(), xp.mean(a), a[1, 2], xp.count_nonzero(a), a.argmax()):
        assert isinstance(r, xp.ndarray) and r.shape == ()
    assert a.sum().item() == 15.0 and type(a.sum().item()) is float
    assert float(a[1, 2]) == 5.0


def test_a_view_knows_the_array_that_owns_its_memory(xp):
    a = xp.arange(6.0)
    v = a[1:].reshape(1, 5)
    assert v.base is a and a.base is None  # autograd matches saved arrays this way


def test_host_index_arrays_are_moved(xp):
    a = xp.arange(12.0).reshape(4, 3)
    host = np.arange(12.0).reshape(4, 3)
    np.testing.assert_array_equal(xp.asnumpy(a[np.array([3, 0, 3])]), host[[3, 0, 3]])
    mask = np.array([True, False, True, False])
    np.testing.assert_array_equal(xp.asnumpy(a[mask]), host[mask])
    xp.add.at(a, np.array([0, 0]), 1.0)
    assert a[0, 0].item() == 2.0  # accumulated twice


def test_setting_from_a_non_scalar_host_array_is_refused(xp):
    a = xp.zeros((2, 3))
    with pytest.raises(ValueError, match="non-scalar numpy.ndarray"):
        a[...] = np.ones(3)
    a[0] = np.float64(2.0)  # NumPy scalars and 0-d arrays are values
    a[1] = np.array(3.0)
    np.testing.assert_array_equal(xp.asnumpy(a), [[2, 2, 2], [3, 3, 3]])


def test_explicit_transfers_both_ways(xp):
    host = np.arange(4, dtype=np.float32)
    a = xp.asarray(host)
    assert isinstance(a, xp.ndarray) and a.dtype == np.float32
    host[0] = 9  # the device holds a copy
    back = xp.asnumpy(a)
    assert type(back) is np.ndarray and back[0] == 0
    np.testing.assert_array_equal(a.get(), [0, 1, 2, 3])
    assert xp.asarray(a) is a


def test_random_generator_draws_on_the_device_and_has_cupys_methods_only(xp):
    g = xp.random.default_rng(0)
    x = g.standard_normal((3,), dtype=np.float32)
    assert isinstance(x, xp.ndarray) and x.dtype == np.float32
    assert isinstance(g.random(2), xp.ndarray)
    assert not hasattr(g, "permutation") and not hasattr(g, "normal")


def test_one_device_and_its_context(xp):
    assert xp.cuda.runtime.getDeviceCount() >= 1
    with xp.cuda.Device(0):
        assert xp.zeros(2).device.id == 0
        assert xp.cuda.runtime.getDevice() == 0
    xp.cuda.Device(0).synchronize()


# ----------------------------------------------------------------- the stand-in's own


@pytest.mark.cpu_only  # the GPU machine's CuPy is another build (CUDA 13)
def test_the_name_lists_are_the_installed_cupys():
    """Regenerate _names.py from the real CuPy (in a subprocess, stand-in off the path)
    and compare: after a CuPy upgrade, rerun tests/standin/make_cupy_names.py."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, str(STANDIN / "make_cupy_names.py"), "--print"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    committed = (STANDIN / "cupy" / "_names.py").read_text()
    assert done.stdout == committed, "CuPy's names changed: rerun make_cupy_names.py"


def _public(names) -> set[str]:
    return {n for n in names if not n.startswith("_") or n.startswith("__") and n.endswith("__")}


def test_the_standin_has_no_name_cupy_lacks():
    names, sections = standin._names.TOP, standin._names.SECTIONS
    extra = {"top": {n for n in dir(standin) if not n.startswith("_")} - set(names)}
    g = standin.random.default_rng(0)
    for label, obj in [("ndarray", standin.ndarray), ("ufunc", standin.add),
                       ("random", standin.random), ("random.Generator", g),
                       ("cuda", standin.cuda), ("cuda.runtime", standin.cuda.runtime),
                       ("cuda.Device", standin.cuda.Device),
                       ("cuda.MemoryPool", standin.get_default_memory_pool()),
                       ("cuda.MemoryHook", standin.cuda.MemoryHook),
                       ("cuda.MemoryPointer", standin.zeros(1).data),
                       ("cuda.Stream", standin.cuda.Stream),
                       ("cuda.Event", standin.cuda.Event), ("lib", standin.lib),
                       ("lib.stride_tricks", standin.lib.stride_tricks),
                       ("cupyx", standin_cupyx)]:
        # the array's dunders matter (CuPy's has no __index__); elsewhere they are Python's
        own = (_public(dir(obj)) - {"__weakref__"} if label == "ndarray"
               else {n for n in dir(obj) if not n.startswith("_")})
        extra[label] = own - set(sections[label])
    assert not any(extra.values()), {k: v for k, v in extra.items() if v}
    assert not hasattr(standin, "RawModule") and standin.__tensorgrad_standin__


def test_transfers_are_counted_and_device_work_is_not():
    a = standin.asarray(np.ones((2, 3), np.float32))  # before counting
    with standin._standin.transfers() as moved:
        b = (a * 2 + 1).sum(axis=0)
        c = standin.maximum(b, 0.5)[np.array([0, 2])]  # a host index: moved
        value = float(c.sum())
        host = standin.asnumpy(b)
    assert value == 12.0 and host.tolist() == [6.0, 6.0, 6.0]
    assert moved.host_to_device == 1 and moved.device_to_host == 2, moved.log
    assert [what for _, _, what in moved.log] == [
        "ndarray.__getitem__ with a host index array", "ndarray.__float__", "ndarray.get"]


def test_the_memory_pool_counts_live_arrays_and_hooks_see_them():
    pool = standin.get_default_memory_pool()
    seen = []

    class Hook(standin.cuda.MemoryHook):
        def malloc_postprocess(self, **kw):
            seen.append(("malloc", kw["mem_size"]))

        def free_postprocess(self, **kw):
            seen.append(("free", kw["mem_size"]))

    before = pool.used_bytes()
    with Hook():
        a = standin.zeros(1000, dtype=np.float32)  # 4000 bytes: 4096 in 512-byte blocks
        view = a[10:]
        assert pool.used_bytes() - before == 4096
        del a, view
    assert pool.used_bytes() == before
    assert seen == [("malloc", 4096), ("free", 4096)]


# --------------------------------------------------------------- which tests run where


def test_every_test_module_says_which_device_it_runs_on():
    """A module has device-aware tests (taking the ``device`` fixture, or ``gpu`` ones),
    or is marked ``cpu_only`` as a whole, not both: the stand-in pass runs the former."""
    undecided = []
    for path in sorted(TESTS.glob("test_*.py")):
        text = path.read_text()
        tree = ast.parse(text)
        # (emulation.PLACES: the kernel tests' places, one of them gpu-marked)
        takes_device = "pytest.mark.gpu" in text or "emulation.PLACES" in text or any(
            isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
            and any(a.arg == "device" for a in node.args.args) for node in ast.walk(tree))
        cpu_only = any(isinstance(node, ast.Assign) and "pytestmark" in ast.unparse(node.targets)
                       and "cpu_only" in ast.unparse(node.value) for node in tree.body)
        if takes_device == cpu_only:
            undecided.append(f"{path.name}: device-aware={takes_device}, cpu_only={cpu_only}")
    assert not undecided, undecided
