"""The stand-in's ``cupyx``: pinned (page-locked) host arrays, which here are plain
NumPy arrays. Part of the CuPy stand-in (see ``tests/standin/cupy/__init__.py``)."""

from __future__ import annotations

import numpy as _np

__tensorgrad_standin__ = True


def empty_pinned(shape, dtype=float, order="C") -> _np.ndarray:
    return _np.empty(shape, dtype, order=order)


def zeros_pinned(shape, dtype=float, order="C") -> _np.ndarray:
    return _np.zeros(shape, dtype, order=order)


def empty_like_pinned(a, dtype=None, order="K", subok=None, shape=None) -> _np.ndarray:
    return _np.empty_like(a, dtype=dtype, order=order, shape=shape)


def zeros_like_pinned(a, dtype=None, order="K", subok=None, shape=None) -> _np.ndarray:
    return _np.zeros_like(a, dtype=dtype, order=order, shape=shape)
