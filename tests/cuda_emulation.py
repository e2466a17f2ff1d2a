"""Run the project's CUDA kernels on the CPU, to check their logic without a GPU.

A kernel's source (a ``kernels.CudaSource``), unchanged, is compiled by g++ after the shim
``cuda_emulation.h`` (``__global__``, ``__device__``, ``blockIdx``/``threadIdx``/
``blockDim``/``gridDim``), with one generated launcher per kernel that runs the whole grid
sequentially: for every block, for every thread, set the built-in variables and call the
kernel. That is exact for kernels whose threads are independent (one thread per output
element, grid-stride loops, no shared memory, no ``__syncthreads``, no atomics: the shim
leaves those undefined, so such a kernel fails to compile here instead of being emulated
wrongly). It is not a check of the GPU itself (warps, memory model, NVRTC's code, -ftz):
``make gpu-check`` is.

``active(*sources)`` makes the ops dispatch to the emulated kernels for NumPy arrays:
``kernels.use_kernel`` answers True for them (False under ``kernels.disabled()``, the
generic reference), and each source's ``function`` returns an ``EmulatedKernel``, so the
op's own launch code (shapes, grid, argument order and types) runs as on a GPU.

Every launch is guarded: each array goes to the kernel inside a larger buffer whose margins
hold a marked NaN (integers: the most negative value). Inputs: a read outside the array
yields that NaN, which the kernel carries to its output, where it is reported. Outputs
(non-const pointers) are first filled with another marked NaN: an element left unwritten,
or a write outside the array, is reported. Kernels here only write their outputs, never
read them.

Built libraries are cached under the temporary folder, keyed by the code's hash.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

from tensorgrad import backend, kernels
from tensorgrad.backends import cuda as cuda_settings

HEADER = Path(__file__).with_name("cuda_emulation.h")
GXX = shutil.which("g++")
FLAGS = ("-std=c++17", "-O2", "-shared", "-fPIC", "-Wall", "-Werror", "-fno-fast-math")

_CTYPES = {"int": ctypes.c_int32, "long long": ctypes.c_int64, "float": ctypes.c_float,
           "double": ctypes.c_double}
# bit patterns of the marked NaNs (and integer sentinels): margins of inputs, and outputs
_GUARD = {np.dtype(np.float32): np.uint32(0x7FC0BEEF), np.dtype(np.float64):
          np.uint64(0x7FF80000BEEF0000)}
_POISON = {np.dtype(np.float32): np.uint32(0x7FC0DEAD), np.dtype(np.float64):
           np.uint64(0x7FF80000DEAD0000)}
_INT_SENTINEL = {np.dtype(np.int8): -128, np.dtype(np.int32): -2**31,
                 np.dtype(np.int64): -2**63}
_libraries: dict[str, ctypes.CDLL] = {}


class EmulationError(AssertionError):
    """An emulated kernel read or wrote outside its arrays, or left outputs unwritten."""


def unavailable_reason() -> str | None:
    return None if GXX else "g++ is not installed (needed to emulate CUDA kernels)"


def require() -> None:
    """Fail, not skip, without g++: emulation is how make test checks kernel logic."""
    if GXX is None:
        pytest.fail(unavailable_reason())


def _launcher(source: kernels.CudaSource, name: str) -> str:
    """C++ for ``tg_launch_<name>(grid, block, <the kernel's parameters>)``."""
    params = source.signature(name)
    decl = ", ".join(f"{ctype} {pname}" for ctype, pname in params)
    call = ", ".join(pname for _, pname in params)
    return (f'extern "C" void tg_launch_{name}(unsigned int grid, unsigned int block'
            f'{", " if decl else ""}{decl}) {{\n'
            f"    tg_emulation_start(grid, block);\n"
            f"    for (unsigned int b = 0; b < grid; ++b)\n"
            f"        for (unsigned int t = 0; t < block; ++t) {{\n"
            f"            tg_emulation_thread(b, t);\n"
            f"            {name}({call});\n"
            f"        }}\n"
            f"}}\n")


def build(source: kernels.CudaSource) -> ctypes.CDLL:
    """The source, compiled unchanged with g++ (plus its launchers), loaded with ctypes.
    Raises kernels.CompileError with g++'s messages when it does not compile."""
    if GXX is None:
        raise RuntimeError(unavailable_reason())
    text = source.code + "\n// ---- launchers (tests/cuda_emulation.py)\n" + "".join(
        _launcher(source, name) for name in source.functions)
    header = HEADER.read_text()
    key = hashlib.sha256("\0".join((header, text, *FLAGS)).encode()).hexdigest()[:20]
    if key in _libraries:
        return _libraries[key]
    folder = Path(tempfile.gettempdir()) / f"tg-cuda-emulation-{os.getuid()}"
    folder.mkdir(exist_ok=True)
    library = folder / f"{source.name}-{key}.so"
    if not library.exists():
        work = Path(tempfile.mkdtemp(dir=folder))
        try:
            (work / "cuda_emulation.h").write_text(header)
            (work / "kernel.cpp").write_text(text)
            done = subprocess.run([GXX, *FLAGS, "-include", "cuda_emulation.h", "kernel.cpp",
                                   "-o", "kernel.so"], cwd=work, capture_output=True,
                                  text=True, timeout=120)
            if done.returncode != 0:
                raise kernels.CompileError(f"g++ rejects CUDA source {source.name!r}:\n"
                                           f"{done.stderr}")
            os.replace(work / "kernel.so", library)  # atomic: parallel workers may race
        finally:
            shutil.rmtree(work, ignore_errors=True)
    lib = _libraries[key] = ctypes.CDLL(str(library))
    for name in source.functions:
        fn = getattr(lib, f"tg_launch_{name}")
        fn.restype = None
        fn.argtypes = [ctypes.c_uint, ctypes.c_uint] + [
            ctypes.c_void_p if ctype.endswith("*") else _CTYPES[ctype]
            for ctype, _ in source.signature(name)]
    return lib


def _marked(dtype: np.dtype, pattern: dict) -> np.ndarray:
    """One element of ``dtype`` holding the marker of ``pattern`` (floats) or the integer
    sentinel, as a 0-d array."""
    if dtype in pattern:
        return np.array(pattern[dtype]).view(dtype)
    return np.array(_INT_SENTINEL[dtype], dtype=dtype)


def _same_bits(a: np.ndarray, marker: np.ndarray) -> np.ndarray:
    unsigned = np.dtype(f"u{a.dtype.itemsize}")
    return a.view(unsigned) == marker.view(unsigned)


class EmulatedKernel:
    """What ``CudaSource.function(name)`` returns under emulation: called like a
    ``cupy.RawKernel``, ``kernel((grid,), (block,), args)``, on NumPy arrays."""

    def __init__(self, source: kernels.CudaSource, name: str):
        self.source, self.name = source, name
        self.params = source.signature(name)
        self.fn = getattr(build(source), f"tg_launch_{name}")

    def __call__(self, grid: tuple, block: tuple, args: tuple) -> None:
        if len(grid) != 1 or len(block) != 1:
            raise EmulationError(f"{self.name}: only 1-D grids are emulated, got {grid}, "
                                 f"{block}")
        kernels.check_arguments(self.source, self.name, args)
        buffers, cargs = [], []
        for (ctype, pname), arg in zip(self.params, args):
            if not ctype.endswith("*"):
                cargs.append(arg.item())
                continue
            n = arg.size
            margin = max(16, n)
            guard = _marked(arg.dtype, _GUARD)
            buf = np.empty(n + 2 * margin, dtype=arg.dtype)
            buf[:] = guard
            output = not ctype.startswith("const ")
            if output:
                buf[margin:margin + n] = _marked(arg.dtype, _POISON)
            else:
                buf[margin:margin + n] = arg.reshape(-1)
            buffers.append((pname, arg, buf, margin, output, guard))
            cargs.append(buf.ctypes.data + margin * buf.itemsize)
        self.fn(int(grid[0]), int(block[0]), *cargs)
        for pname, arg, buf, margin, output, guard in buffers:
            n = arg.size
            if not (_same_bits(buf[:margin], guard).all()
                    and _same_bits(buf[margin + n:], guard).all()):
                raise EmulationError(f"{self.name} wrote outside {pname}")
            if output:
                inside = buf[margin:margin + n]
                if _same_bits(inside, _marked(arg.dtype, _POISON)).any():
                    missed = int(_same_bits(inside, _marked(arg.dtype, _POISON)).sum())
                    raise EmulationError(f"{self.name} left {missed} of {n} elements of "
                                         f"{pname} unwritten")
                if arg.dtype.kind == "f" and _same_bits(inside, guard).any():
                    raise EmulationError(f"{self.name} read outside an input: {pname} holds "
                                         "the marker of the inputs' margins")
                arg.reshape(-1)[...] = inside  # (outputs are C-contiguous: checked above)


@contextlib.contextmanager
def active(*sources: kernels.CudaSource):
    """Within: NumPy arrays take the kernel path of the ops, through the emulated kernels
    of ``sources`` (``kernels.disabled()`` still selects the generic path)."""
    emulated = {s.name: {name: EmulatedKernel(s, name) for name in s.functions}
                for s in sources}
    use_kernel = kernels.use_kernel
    kernels.use_kernel = lambda a: isinstance(a, np.ndarray) and not kernels._disabled
    for s in sources:
        s.function = emulated[s.name].__getitem__  # an instance attribute: shadows the method
    try:
        yield
    finally:
        kernels.use_kernel = use_kernel
        for s in sources:
            del s.function


@contextlib.contextmanager
def recording():
    """Within: the names of the kernels launched (through ``kernels.launch``) are appended
    to the list it yields, so a test can show that the kernel path ran at all."""
    launched: list[str] = []
    launch = kernels.launch

    def record(source, name, threads, args):
        launched.append(name)
        launch(source, name, threads, args)

    kernels.launch = record
    try:
        yield launched
    finally:
        kernels.launch = launch


# ------------------------------------------------------------------ where a test runs
# The kernel tests run each comparison twice: emulated here (every make test) and on a
# real GPU (gpu-marked). ``Place`` is what differs between the two; the test modules add
# how they compare results.

PLACES = [pytest.param("emulated", marks=pytest.mark.cpu_only),
          pytest.param("cuda", marks=pytest.mark.gpu)]


@contextlib.contextmanager
def switched_on():
    """The kernels switch of tensorgrad.backends.cuda on, restored after."""
    before = cuda_settings.kernels
    cuda_settings.kernels = True
    try:
        yield
    finally:
        cuda_settings.kernels = before


class Place:
    """Where the kernels of ``sources`` run: ``emulated`` (NumPy arrays, g++) or ``cuda``
    (CuPy). Emulation is how make test checks kernel logic: without g++ it fails."""

    sources: tuple[kernels.CudaSource, ...] = ()

    def __init__(self, name: str):
        if name == "emulated":
            require()
        self.name, self.emulated = name, name == "emulated"
        self.device = "cpu" if self.emulated else "cuda"

    def to(self, a: np.ndarray):
        return a if self.emulated else backend._cupy.asarray(a)

    def host(self, a) -> np.ndarray:
        return a if isinstance(a, np.ndarray) else backend._cupy.asnumpy(a)

    @contextlib.contextmanager
    def kernels(self):
        """Kernels on; yields the list of the kernels launched."""
        on = active(*self.sources) if self.emulated else switched_on()
        with on, recording() as launched:
            yield launched
