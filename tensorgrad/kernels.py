"""CUDA kernels: where they are declared, how they are compiled, and how an op picks one.

A kernel sits next to the op it speeds up, as a full CUDA source declared at module level:

    _POOL = kernels.CudaSource("max_pool2d", r'''
    extern "C" __global__ void max_pool2d_backward_f32(...) { ... }
    ''', functions=("max_pool2d_backward_f32",))

    def backward(ctx, gy):
        if kernels.use_kernel(gy) and <the case is supported>:   # the one visible decision
            _POOL.function("max_pool2d_backward_f32")(grid, block, args)
        else:
            ...  # the generic xp path: the kernel's reference, tested against it on a GPU

Declaring a source compiles nothing and needs no CuPy: ``function`` compiles it with
NVRTC on first use (through ``cupy.RawModule``, which caches it per device and on disk).
Every declared source is in ``SOURCES``, and ``tests/test_kernels_compile.py`` compiles
each one for ``ARCHS`` with NVRTC alone, no GPU, so a syntax or type error fails CI.
The project writes only full sources (``RawModule``), not ``ElementwiseKernel`` snippets,
which CuPy completes only when they are called and so cannot be checked this way.
"""

from __future__ import annotations

import contextlib
import inspect
import os
from collections.abc import Iterator
from typing import Any

from . import backend

ARCHS = ("sm_80", "sm_90")  # A100 and H100/H200: what the compile check targets

SOURCES: dict[str, CudaSource] = {}  # every CUDA source of the project, by name

_disabled = os.environ.get("TG_CUDA_KERNELS", "1") == "0"  # force the generic path


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

    def __repr__(self) -> str:
        return f"CudaSource({self.name!r}, functions={self.functions}, in {self.declared_in})"


def use_kernel(array: Any) -> bool:
    """The dispatch test: True when ``array`` lives on a real CUDA device and kernels are
    on. The test suite's NumPy-backed CuPy stand-in executes no kernels (it has no
    ``RawModule``), so there ops take the generic path."""
    return (not _disabled and backend.is_cupy_array(array)
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
