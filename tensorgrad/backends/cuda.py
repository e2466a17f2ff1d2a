"""``tg.backends.cuda``: the CUDA switches. ``matmul.allow_tf32`` (PyTorch's name) and
``kernels``, which turns on the project's own CUDA kernels.

``matmul.allow_tf32``: may cuBLAS round float32 GEMMs to TF32?

TF32 keeps float32's range but only 10 bits of mantissa in the products, and runs
several times faster on tensor cores (sm_80 and later). Off by default, as in PyTorch:
float32 stays float32. Every convolution of this engine is a GEMM (im2col + matmul), so
this one flag covers convolutions too (PyTorch needs ``cudnn.allow_tf32`` as well).

The flag sets CuPy's compute type for float32 matrix products, the switch its
``CUPY_TF32=1`` environment variable sets at CuPy's first float32 matmul; the flag
starts as that variable says (False when it is unset).
"""

from __future__ import annotations

import os
import sys
import types

from .. import backend


def kernels_from_environment() -> bool:
    """``TG_CUDA_KERNELS`` set to anything but "" or "0" turns the kernels on."""
    return os.environ.get("TG_CUDA_KERNELS", "0").strip() not in ("", "0")


# Our own CUDA kernels (im2col/col2im, pooling; see tensorgrad/kernels.py): off by default
# until ``make gpu-check`` has verified them on a GPU (their logic is checked on the CPU
# by tests/cuda_emulation.py, but no kernel has run on a real GPU yet). Off, every op
# takes its generic CuPy path. On: ``tg.backends.cuda.kernels = True``, or the
# environment variable ``TG_CUDA_KERNELS=1`` at import.
kernels: bool = kernels_from_environment()


def _apply(allow: bool) -> None:
    """Tell CuPy, when a GPU is usable; with none there is no GEMM to change."""
    if backend.cuda_unavailable_reason() is not None:
        return
    try:
        from cupy._core import _routines_linalg as linalg
    except ImportError:  # not the real CuPy (the test suite's stand-in): nothing to set
        return
    compute = linalg.COMPUTE_TYPE_TF32 if allow else linalg.COMPUTE_TYPE_DEFAULT
    linalg.set_compute_type(backend._cupy.float32, compute)


class _Matmul:
    """``tg.backends.cuda.matmul``, like ``torch.backends.cuda.matmul``."""

    def __init__(self) -> None:
        self._allow_tf32 = os.environ.get("CUPY_TF32", "0").strip() not in ("", "0")

    @property
    def allow_tf32(self) -> bool:
        return self._allow_tf32

    @allow_tf32.setter
    def allow_tf32(self, value: bool) -> None:
        if not isinstance(value, bool):
            raise TypeError(f"allow_tf32 must be a bool, got {type(value).__name__}")
        _apply(value)
        self._allow_tf32 = value

    def __setattr__(self, name: str, value) -> None:
        # a typo (allow_fp32 = True) must not pass silently as a new attribute
        if name not in ("allow_tf32", "_allow_tf32"):
            raise AttributeError(f"tg.backends.cuda.matmul has no setting {name!r}")
        object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        return f"tg.backends.cuda.matmul(allow_tf32={self._allow_tf32})"


matmul = _Matmul()


class _Settings(types.ModuleType):
    """This module, guarded: ``kernels`` takes only a bool, and a misspelt switch
    (``tg.backends.cuda.kernel = True``) raises instead of passing silently."""

    def __setattr__(self, name: str, value) -> None:
        if name == "kernels" and not isinstance(value, bool):
            raise TypeError(f"tg.backends.cuda.kernels must be a bool, got "
                            f"{type(value).__name__}")
        if name not in self.__dict__:
            raise AttributeError(f"tg.backends.cuda has no setting {name!r}")
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Settings
