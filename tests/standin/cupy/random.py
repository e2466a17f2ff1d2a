"""``cupy.random``: ``default_rng`` and the legacy functions, on the stand-in device.

A generator's stream is seeded apart from NumPy's (the seed is mixed with a constant),
so the device draws other numbers than the host for the same seed, as real CuPy does.
Only the methods CuPy's ``Generator`` has exist (no ``permutation``, ``choice``,
``normal`` ...).
"""

from __future__ import annotations

import numpy as _np

from . import _names
from ._core import _unwrap, _unwrap_kw, _wrap
from ._core import function as _function

_APART = 0x5EED_C0DE  # mixed into every seed: the device's stream is not the host's


def _seed(seed):
    if seed is None:
        return None
    return _np.random.SeedSequence([int(seed), _APART])


class _Generator:
    """What ``cupy.random.default_rng`` returns."""

    def __init__(self, seed=None):
        self._g = _np.random.default_rng(_seed(seed))


def _generator_method(name: str):
    def method(self, *args, **kwargs):
        where = f"Generator.{name}"
        return _wrap(getattr(self._g, name)(*_unwrap(args, where), **_unwrap_kw(kwargs, where)))

    method.__name__ = name
    return method


for _name in _names.SECTIONS["random.Generator"]:
    if not _name.startswith("_") and hasattr(_np.random.Generator, _name):
        setattr(_Generator, _name, _generator_method(_name))


def default_rng(seed=None) -> _Generator:
    return _Generator(seed)


_legacy = _np.random.RandomState(_APART)


def seed(seed=None) -> None:
    _legacy.seed(None if seed is None else (int(seed) + _APART) % 2**32)


for _name in _names.SECTIONS["random"]:
    if _name not in globals() and not _name.startswith("_") and callable(
            getattr(_legacy, _name, None)):
        globals()[_name] = _function(getattr(_legacy, _name), _name)
