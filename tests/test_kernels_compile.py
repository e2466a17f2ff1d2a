"""Every CUDA source of the project compiles with NVRTC for sm_80 and sm_90, with no GPU.

What is checked: the full CUDA sources declared with ``tensorgrad.kernels.CudaSource``
(``cupy.RawModule`` sources), compiled with the options CuPy itself would use. The
project writes no ``ElementwiseKernel``/``ReductionKernel`` snippets (CuPy completes
those only when called, so they could not be checked here): a test below scans the
source tree for them, and for raw kernels declared outside the registry.

NVRTC is a library, not a GPU: the ``nvidia-cuda-nvrtc-cu12`` wheel of the dev extras
brings it. Without it these tests fail (they never skip), so a kernel is never
unchecked in CI by accident.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from tensorgrad import kernels

pytestmark = pytest.mark.cpu_only  # no device: compilers, files, fakes

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("tensorgrad", "nn", "models")
RAW_CUPY_KERNELS = ("RawKernel", "RawModule", "ElementwiseKernel", "ReductionKernel")


def _calls(tree: ast.AST, names: tuple[str, ...]):
    """(called name, first argument if a string literal) for each call to one of names."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", None)
            if name in names:
                first = node.args[0] if node.args else None
                literal = first.value if isinstance(first, ast.Constant) else None
                yield name, literal


def _declared_in_tree() -> dict[str, str]:
    """{source name: module} for every ``CudaSource("name", ...)`` in the source tree."""
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if path.name == "kernels.py" and package == "tensorgrad":
                continue  # the class itself, not a declaration
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            module = module.removesuffix(".__init__")
            for _, name in _calls(ast.parse(path.read_text()), ("CudaSource",)):
                assert name is not None, f"{path}: name a CudaSource with a string literal"
                found[name] = module
    return found


DECLARED = _declared_in_tree()
for _module in sorted(set(DECLARED.values())):  # importing a module declares its sources
    importlib.import_module(_module)

GOOD = r"""
extern "C" __global__ void twice(float* x, const int n) {
    // each thread doubles one element
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] *= 2.0f;
}
"""
BROKEN = r"""
extern "C" __global__ void broken(float* x) {
    x[threadIdx.x] = not_declared_anywhere;
}
"""


def test_the_registry_is_every_cuda_source_of_the_project():
    registered = {name: src.declared_in for name, src in kernels.SOURCES.items()}
    assert registered == DECLARED


def test_no_cuda_source_bypasses_the_registry():
    offenders = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if path.name == "kernels.py" and package == "tensorgrad":
                continue  # the one place that builds a RawModule
            for name, _ in _calls(ast.parse(path.read_text()), RAW_CUPY_KERNELS):
                offenders.append(f"{path.relative_to(ROOT)}: {name}")
    assert offenders == [], "declare CUDA sources with tensorgrad.kernels.CudaSource"


@pytest.mark.parametrize("arch", kernels.ARCHS)
@pytest.mark.parametrize("name", sorted(kernels.SOURCES))
def test_source_compiles(name, arch):
    source = kernels.SOURCES[name]
    cubin = kernels.nvrtc_compile(source.code, arch, source.options, filename=f"{name}.cu")
    assert cubin[:4] == b"\x7fELF"
    for function in source.functions:  # extern "C": the names are in the symbol table
        assert function.encode() in cubin


@pytest.mark.parametrize("arch", kernels.ARCHS)
def test_the_check_compiles_a_good_source(arch):
    cubin = kernels.nvrtc_compile(GOOD, arch, filename="good.cu")
    assert cubin[:4] == b"\x7fELF" and b"twice" in cubin


@pytest.mark.parametrize("arch", kernels.ARCHS)
def test_the_check_fails_a_broken_source(arch):
    with pytest.raises(kernels.CompileError, match="not_declared_anywhere"):
        kernels.nvrtc_compile(BROKEN, arch, filename="broken.cu")


def test_the_check_targets_the_asked_architecture():
    code = r"""
    #if __CUDA_ARCH__ < 900
    #error compiled for an architecture below sm_90
    #endif
    extern "C" __global__ void hopper_only(float* x) { x[0] = 1.0f; }
    """
    assert kernels.nvrtc_compile(code, "sm_90", filename="hopper.cu")[:4] == b"\x7fELF"
    with pytest.raises(kernels.CompileError, match="below sm_90"):
        kernels.nvrtc_compile(code, "sm_80", filename="hopper.cu")


def test_declaring_a_source_checks_its_names():
    with pytest.raises(ValueError, match="not_there"):
        kernels.CudaSource("test-only-bad-names", GOOD, functions=("not_there",))
    assert "test-only-bad-names" not in kernels.SOURCES
    first = next(iter(kernels.SOURCES), None)
    if first is not None:
        with pytest.raises(ValueError, match="already declared"):
            kernels.CudaSource(first, GOOD, functions=("twice",))
