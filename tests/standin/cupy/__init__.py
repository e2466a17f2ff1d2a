"""A strict NumPy-backed stand-in for CuPy: a fake "cuda" device for the test suite.

What it is: a package named ``cupy`` that the second pass of ``make test`` puts first on
``PYTHONPATH`` (with ``TG_TEST_DEVICE=cuda``), so that tensorgrad's CUDA path runs on a
machine without a GPU. It is one device (``cuda:0``) whose arrays hold NumPy arrays. It
is a test tool in the test tree, never a device users pick.

What it refuses, as CuPy does, so that host/device mixing fails in CI:

- its ``ndarray`` is not a ``numpy.ndarray``, and ``np.asarray(a)`` raises ``TypeError``
  (``__array__``): a device array never becomes a host array implicitly;
- its functions, ufuncs and operators refuse NumPy arrays (and Python lists where the
  array goes): CuPy never moves host data to the device implicitly. Python and NumPy
  scalars are fine, as CuPy passes them to kernels as arguments;
- ``a[...] = numpy_array`` raises ``ValueError`` unless the NumPy array is 0-d;
- reductions return 0-d device arrays, never NumPy scalars;
- it has no name real CuPy lacks: the names come from ``_names.py``, generated from the
  installed CuPy 14 and checked against it by ``tests/test_cupy_standin.py``;
- it executes no CUDA: ``RawKernel``/``RawModule``/``ElementwiseKernel`` are absent
  (and ``__tensorgrad_standin__`` is set), so tensorgrad's dispatch takes the generic path.

What it allows, as CuPy does, each a counted transfer (``cupy._standin.transfers()``):
NumPy index arrays (moved to the device), ``cupy.asarray``/``cupy.array`` of host data,
``cupy.asnumpy``, ``.get()``, ``.item()``, ``float(a)`` and printing.

What it does not model: streams and asynchrony, several devices, speed, CuPy's random
streams (its generators are seeded apart from NumPy's, so the two devices draw
different numbers, as they do with real CuPy).
"""

from __future__ import annotations

import sys as _sys

import numpy as _np

from . import _names, _standin  # noqa: F401 - _standin: the tests' transfer counter
from ._core import _UFUNCS, _add_methods, _standin_array, ndarray, ufunc
from ._core import MemoryPool as _MemoryPool
from ._core import function as _function

__tensorgrad_standin__ = True
__version__ = _names.VERSION

_pool = _MemoryPool()


def asarray(a, dtype=None, order=None, *, blocking=False):
    """A device array of ``a``: no copy when ``a`` is one already; host data is copied
    to the device (a transfer)."""
    if type(a) is ndarray:
        return a if dtype is None or a.dtype == _np.dtype(dtype) else a.astype(dtype)
    return _standin_array(a, dtype, order or "K", copy=False)


def array(obj, dtype=None, copy=True, order="K", subok=False, ndmin=0, *, blocking=False):
    if type(obj) is ndarray:
        out = ndarray._of(_np.array(obj._a, dtype=dtype, copy=copy, order=order, ndmin=ndmin))
        return out
    return _standin_array(obj, dtype, order, copy=True, ndmin=ndmin)


asanyarray = asarray


def asnumpy(a, stream=None, order="C", out=None, *, blocking=True):
    """A host (NumPy) copy of a device array (a transfer); host data is returned as is."""
    if type(a) is ndarray:
        return a.get(order=order, out=out)
    host = _np.asarray(a, order=order)
    if out is not None:
        out[...] = host
        return out
    return host


def get_array_module(*args):
    return _this if any(type(a) is ndarray for a in args) else _np


def get_default_memory_pool() -> _MemoryPool:
    return _pool


def is_available() -> bool:
    return True


# Names NumPy has but whose CuPy versions differ (files, printing, host-only helpers):
# not offered, so that nothing here pretends to be CuPy where it is not.
_NOT_OFFERED = {
    "load", "save", "savez", "savez_compressed", "loadtxt", "savetxt", "genfromtxt",
    "fromfile", "frombuffer", "fromiter", "fromstring", "fromfunction", "from_dlpack",
    "fromDlpack", "disp", "who", "show_config", "require", "asfortranarray",
    "asarray_chkfinite", "piecewise", "apply_along_axis", "apply_over_axes",
}


_missing = object()


def _build() -> None:
    g = globals()
    for name, kind in _names.TOP.items():
        if name in g or name in _NOT_OFFERED:
            continue
        obj = getattr(_np, name, _missing)
        if obj is _missing:
            continue
        if kind == "numpy" or kind == "constant" and (
                isinstance(obj, float) or name in ("s_", "index_exp")):
            g[name] = obj
        elif kind == "ufunc" and isinstance(obj, _np.ufunc):
            if obj.__name__ not in _UFUNCS:
                _UFUNCS[obj.__name__] = ufunc(obj)
            g[name] = _UFUNCS[obj.__name__]
        elif kind in ("ufunc", "function") and callable(obj):
            g[name] = _function(obj, name)
    _add_methods(_names.SECTIONS["ndarray"])


_this = _sys.modules[__name__]
_build()

from . import cuda, lib, random  # noqa: E402, F401 - they use the namespace built above

__all__ = [n for n in globals() if not n.startswith("_")]


def _namespace(module: str) -> dict:
    """Where ``__array_function__`` looks up the CuPy version of a NumPy function."""
    return globals() if module == "numpy" else {}
