"""CUDA kernels: where they are declared, how they are compiled, and how an op picks one.

A kernel sits next to the op it speeds up, as a full CUDA source declared at module level:

    _POOL = kernels.CudaSource("pool2d", r'''
    extern "C" __global__ void avg_pool2d_backward_f32(const float* dy, ...) { ... }
    ''', functions=("avg_pool2d_backward_f32", ...))

    def forward(ctx, gy, ...):
        if kernels.use_kernel(gy) and gy.dtype in kernels.FLOAT_SUFFIX:  # the one decision
            return _avg_pool2d_backward_kernel(gy, ...)  # kernels.launch(_POOL, name, ...)
        ...  # the generic xp path: the kernel's reference, tested against it on a GPU

Declaring a source compiles nothing and needs no CuPy: ``function`` compiles it with
NVRTC on first use (through ``cupy.RawModule``, which caches it per device and on disk).
``launch`` runs a kernel with one thread per element of a grid-stride loop, after checking
every argument against the kernel's C signature: a Python int where the C code declares
``int`` or ``long long`` would be passed with the wrong width and read as garbage on the
GPU, so scalars are passed as ``np.int32``/``np.int64`` and arrays must have the
declared element type and be C-contiguous.

The kernels are off unless ``tg.backends.cuda.kernels`` (or ``TG_CUDA_KERNELS=1``) turns
them on: until ``make gpu-check`` has run them on a GPU, only their compilation (NVRTC)
and their logic (``tests/cuda_emulation.py``: the same source built with g++, its grid
run thread by thread on the CPU) are verified.

Every declared source is in ``SOURCES``, and ``tests/test_kernels_compile.py`` compiles
each one for ``ARCHS`` with NVRTC alone, no GPU, so a syntax or type error fails CI.
The project writes only full sources (``RawModule``), not ``ElementwiseKernel`` snippets,
which CuPy completes only when they are called and so cannot be checked this way.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import re
from collections.abc import Iterator
from typing import Any

import numpy as np

from . import backend
from .backends import cuda as _settings

ARCHS = ("sm_80", "sm_90")  # A100 and H100/H200: what the compile check targets

SOURCES: dict[str, CudaSource] = {}  # every CUDA source of the project, by name

BLOCK = 256  # threads per block of ``launch``
MAX_BLOCKS = 65535  # more work than BLOCK·MAX_BLOCKS threads: the grid-stride loop repeats

# the element types kernels are written for, by the suffix of their entry points
FLOAT_SUFFIX = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}

# C parameter types -> what ``launch`` must be given for them (scalars: that exact NumPy
# type; pointers: an array of that dtype)
C_SCALARS = {"int": np.int32, "long long": np.int64, "float": np.float32,
             "double": np.float64}
C_POINTEES = {"float": np.float32, "double": np.float64, "int": np.int32,
              "long long": np.int64, "signed char": np.int8}

_disabled = False  # set by ``disabled()``: the generic path, even with kernels on


class CompileError(RuntimeError):
    """NVRTC rejected a CUDA source; the message carries the compiler's log."""


class CudaSource:
    """One CUDA source (a ``RawModule``) and the ``extern "C"`` kernels it defines.

    ``name`` is unique in the project; ``functions`` lists the kernels ops may ask for;
    ``options`` are extra NVRTC options (CuPy adds its own: C++17, its headers, -ftz).
    """

    def __init__(self, name: str, code: str, *, functions: tuple[str, ...],
                 options: tuple[str, ...] = ()):
        if name in SOURCES:
            raise ValueError(f"a CUDA source named {name!r} is already declared "
                             f"(in {SOURCES[name].declared_in})")
        if not functions or any(f not in code for f in functions):
            raise ValueError(f"CUDA source {name!r}: every name in functions={functions!r} "
                             "must appear in its code")
        self.name, self.code = name, code
        self.functions, self.options = tuple(functions), tuple(options)
        # the declaring module, so the registry can be checked against the source tree
        caller = inspect.currentframe().f_back
        self.declared_in = caller.f_globals.get("__name__", "?") if caller else "?"
        self._module = None
        self._kernels: dict[str, Any] = {}
        self._signatures: dict[str, tuple[tuple[str, str], ...]] = {}
        SOURCES[name] = self

    def function(self, name: str):
        """The ``cupy.RawKernel`` called ``name``, compiled on first use."""
        if name not in self.functions:
            raise ValueError(f"CUDA source {self.name!r} has no kernel {name!r}; "
                             f"it declares {self.functions}")
        if name not in self._kernels:
            if self._module is None:
                if backend._cupy is None:
                    raise RuntimeError(f"CUDA kernel {name!r} needs CuPy, which is not "
                                       "installed")
                self._module = backend._cupy.RawModule(code=self.code, options=self.options)
            self._kernels[name] = self._module.get_function(name)
        return self._kernels[name]

    def signature(self, name: str) -> tuple[tuple[str, str], ...]:
        """The parameters of ``extern "C"`` kernel ``name`` as (C type, name) pairs, read
        from the source: ``("const float*", "x")``, ``("long long", "total")``."""
        if name not in self._signatures:
            found = re.search(r'extern\s+"C"\s+__global__\s+void\s+' + re.escape(name)
                              + r"\s*\(([^)]*)\)", self.code)
            if found is None:
                raise ValueError(f"CUDA source {self.name!r}: no extern \"C\" __global__ "
                                 f"kernel {name!r}")
            params = []
            for param in filter(str.strip, found.group(1).split(",")):
                words = param.replace("*", " * ").replace("__restrict__", " ").split()
                if len(words) < 2:
                    raise ValueError(f"CUDA kernel {name!r}: cannot read parameter {param!r}")
                ctype = " ".join(words[:-1]).replace(" *", "*")
                params.append((ctype, words[-1]))
            self._signatures[name] = tuple(params)
        return self._signatures[name]

    def __repr__(self) -> str:
        return f"CudaSource({self.name!r}, functions={self.functions}, in {self.declared_in})"


def use_kernel(array: Any) -> bool:
    """The dispatch test: True when ``array`` lives on a real CUDA device and kernels are
    on (``tg.backends.cuda.kernels``, off by default). The test suite's NumPy-backed CuPy
    stand-in executes no kernels (it has no ``RawModule``), so there ops take the generic
    path."""
    return (_settings.kernels and not _disabled and backend.is_cupy_array(array)
            and callable(getattr(backend._cupy, "RawModule", None))
            and not getattr(backend._cupy, "__tensorgrad_standin__", False))


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Run the generic path even on a GPU: the reference a kernel is compared with."""
    global _disabled
    before, _disabled = _disabled, True
    try:
        yield
    finally:
        _disabled = before


def check_arguments(source: CudaSource, name: str, args: tuple) -> None:
    """TypeError unless ``args`` match the C signature of kernel ``name`` exactly: each
    scalar of the declared NumPy type (np.int32 for ``int``, np.int64 for ``long long``),
    each pointer a C-contiguous array of the declared element type."""
    params = source.signature(name)
    if len(args) != len(params):
        raise TypeError(f"CUDA kernel {name!r} takes {len(params)} arguments, got {len(args)}")
    for (ctype, pname), arg in zip(params, args):
        if ctype.endswith("*"):
            want = np.dtype(C_POINTEES[ctype.removeprefix("const ").removesuffix("*")])
            dtype = getattr(arg, "dtype", None)
            if dtype != want or not arg.flags.c_contiguous:
                raise TypeError(f"CUDA kernel {name!r}: {pname} ({ctype}) needs a C-contiguous "
                                f"{want} array, got {type(arg).__name__} of dtype {dtype}")
        elif type(arg) is not C_SCALARS[ctype]:
            raise TypeError(f"CUDA kernel {name!r}: {pname} ({ctype}) needs a "
                            f"np.{C_SCALARS[ctype].__name__}, got {type(arg).__name__} {arg!r}")


def int32s(*values: int) -> tuple[np.int32, ...]:
    """``values`` as the np.int32 scalars that a kernel's ``int`` parameters take."""
    for v in values:
        if not -2**31 <= v < 2**31:
            raise ValueError(f"{v} does not fit a CUDA kernel's int parameter (32 bits)")
    return tuple(np.int32(v) for v in values)


def launch(source: CudaSource, name: str, threads: int, args: tuple) -> None:
    """Run kernel ``name`` of ``source`` over ``threads`` work items: blocks of BLOCK
    threads, at most MAX_BLOCKS of them (the kernels loop with a grid stride), after
    ``check_arguments``. Nothing to do, nothing launched (an empty grid is an error)."""
    check_arguments(source, name, args)
    if threads <= 0:
        return
    blocks = min(-(-threads // BLOCK), MAX_BLOCKS)
    source.function(name)((blocks,), (BLOCK,), args)


def report_difference(kernel: str, case: str, max_abs: float) -> None:
    """Record the largest |kernel − generic| a test saw. ``make gpu-check`` sets
    ``TG_KERNEL_DIFFS`` to a file and tabulates it; without it this does nothing."""
    path = os.environ.get("TG_KERNEL_DIFFS")
    if path:
        import json

        with open(path, "a") as f:  # one short line per write: safe from parallel workers
            f.write(json.dumps({"kernel": kernel, "case": case, "max_abs": float(max_abs)})
                    + "\n")


# ------------------------------------------------------------------ compile check


def compile_options(arch: str, options: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The NVRTC options ``cupy.RawModule`` compiles with on a GPU of ``arch``, less the
    CUDA toolkit's include folder CuPy adds when it finds one: the check must not depend
    on which toolkit (if any) a machine has, so kernels include CuPy's own headers only."""
    from cupy._core import core  # the real CuPy: only the compile check calls this

    cupy_headers = "-I" + core._get_header_dir_path()
    kept = tuple(o for o in core.assemble_cupy_compiler_options(tuple(options))
                 if not o.startswith("-I") or o.startswith(cupy_headers) or o in options)
    return kept + ("-ftz=true", f"-arch={arch}", "--device-as-default-execution-space")


def nvrtc_compile(code: str, arch: str, options: tuple[str, ...] = (),
                  filename: str = "kernel.cu") -> bytes:
    """Compile ``code`` with NVRTC for ``arch`` (e.g. ``"sm_80"``) and return the cubin.

    Needs no GPU, only the NVRTC library (``nvidia-cuda-nvrtc-cu12``, a dev extra).
    Raises CompileError with the compiler's log when the source does not compile.
    """
    from cupy_backends.cuda.libs import nvrtc

    program = nvrtc.createProgram(code, filename, [], [])
    try:
        try:
            nvrtc.compileProgram(program, list(compile_options(arch, options)))
        except nvrtc.NVRTCError as e:
            log = nvrtc.getProgramLog(program)
            raise CompileError(f"{filename} does not compile for {arch} ({e}):\n{log}") from None
        return nvrtc.getCUBIN(program)
    finally:
        nvrtc.destroyProgram(program)
