"""The NumPy/CuPy backend: the generic path uses only functions CuPy also has
(checked by reading the source, so no GPU is needed), devices and their errors."""

from __future__ import annotations

import ast
import importlib
import pathlib

import numpy as np
import pytest

import tensorgrad as tg
from tensorgrad import backend

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ["tensorgrad", "nn", "models"]
CUPY_ONLY = {"cuda"}  # xp.cuda.Device(...), xp.cuda.runtime: only where xp is cupy


def _chain(node: ast.AST) -> list[str] | None:
    """``xp.a.b`` -> ["a", "b"]; also ``get_array_module(x).a``; None otherwise."""
    names = []
    while isinstance(node, ast.Attribute):
        names.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name) and node.id == "xp":
        return names[::-1]
    if (isinstance(node, ast.Call) and isinstance(node.func, (ast.Name, ast.Attribute))
            and getattr(node.func, "id", getattr(node.func, "attr", None)) == "get_array_module"
            and names):
        return names[::-1]
    return None


def xp_uses() -> dict[str, set[str]]:
    """Every ``xp.<name>`` (with sub-attributes, e.g. ``xp.add.at``) under the packages,
    mapped to the files that use it."""
    uses: dict[str, set[str]] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(), filename=str(path))
            for node in ast.walk(tree):
                # xp.add.at records "add.at" and, from its inner node, "add": both must exist
                if isinstance(node, ast.Attribute):
                    chain = _chain(node)
                    if chain:
                        uses.setdefault(".".join(chain), set()).add(
                            str(path.relative_to(ROOT)))
    return uses


def _resolve(module, dotted: str):
    obj = module
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def test_the_scan_finds_the_known_uses():
    uses = xp_uses()
    # a few the engine is known to use; if the scan broke, these would vanish
    for name in ("add.at", "exp", "where", "broadcast_to"):
        assert name in uses, sorted(uses)


def test_every_xp_function_exists_in_numpy_and_cupy():
    # CuPy is a dev dependency; importing it needs no GPU, only the package
    cupy = importlib.import_module("cupy")
    missing = {}
    for name, files in sorted(xp_uses().items()):
        # xp.cuda.* is device management, reached only on the CuPy side of a branch
        libs = (cupy,) if name.split(".")[0] in CUPY_ONLY else (np, cupy)
        for lib in libs:
            try:
                _resolve(lib, name)
            except AttributeError:
                missing[f"{lib.__name__}.{name}"] = sorted(files)
    assert not missing, f"used through xp but missing: {missing}"


def test_the_introspection_catches_a_numpy_only_function():
    cupy = pytest.importorskip("cupy")
    # np.histogram_bin_edges exists only in NumPy; the check must be able to fail
    assert hasattr(np, "histogram_bin_edges") and not hasattr(cupy, "histogram_bin_edges")
    tree = ast.parse("def f(x):\n    xp = get_array_module(x)\n"
                     "    return xp.histogram_bin_edges(x), xp.lib.stride_tricks.as_strided\n")
    chains = {".".join(c) for n in ast.walk(tree) if isinstance(n, ast.Attribute)
              and (c := _chain(n))}
    assert "histogram_bin_edges" in chains and "lib.stride_tricks.as_strided" in chains
    with pytest.raises(AttributeError):
        _resolve(cupy, "histogram_bin_edges")


# ------------------------------------------------------------------------ devices


def test_cuda_is_available_never_raises_and_agrees_with_device_count():
    available = tg.cuda.is_available()
    assert isinstance(available, bool)
    assert (tg.cuda.device_count() > 0) == available
    if not available:
        assert isinstance(tg.cuda.unavailable_reason(), str) and tg.cuda.unavailable_reason()


@pytest.mark.skipif(tg.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("make", [
    lambda: tg.zeros(2, device="cuda"), lambda: tg.tensor([1.0], device="cuda:0"),
    lambda: tg.ones(2).to("cuda"), lambda: tg.ones(2).cuda(), lambda: tg.randn(3, device="cuda"),
])
def test_asking_for_cuda_without_a_gpu_says_why(make):
    with pytest.raises(RuntimeError) as e:
        make()
    msg = str(e.value)
    assert "cuda" in msg.lower() and tg.cuda.unavailable_reason() in msg


def test_unknown_device_is_a_value_error():
    with pytest.raises(ValueError, match="tpu"):
        tg.zeros(2, device="tpu")


def test_device_is_cpu_by_default_and_compares_as_a_string():
    t = tg.zeros(2)
    assert t.device == "cpu" and t.device.type == "cpu" and t.device.index is None
    assert tg.Device("cuda:1").type == "cuda" and tg.Device("cuda:1").index == 1
    assert tg.get_array_module(t.data) is np


class _FakeCudaTensor(tg.Tensor):
    """A CPU tensor that claims to live on a GPU: lets the mixed-device check run here."""

    @property
    def device(self):
        return tg.Device("cuda:0")


@pytest.mark.parametrize("op", [lambda a, b: a + b, lambda a, b: a @ b,
                                lambda a, b: tg.cat([a, b]), lambda a, b: tg.maximum(a, b)])
def test_mixing_devices_names_both(op):
    a = tg.ones(2, 2)
    b = _FakeCudaTensor(np.ones((2, 2), np.float32))
    with pytest.raises(RuntimeError) as e:
        op(a, b)
    assert "cpu" in str(e.value) and "cuda:0" in str(e.value)


@pytest.mark.gpu
def test_mixing_real_devices_names_both():
    with pytest.raises(RuntimeError) as e:
        tg.ones(2) + tg.ones(2, device="cuda")
    assert "cpu" in str(e.value) and "cuda:0" in str(e.value)


@pytest.mark.gpu
def test_moving_between_devices_keeps_values_and_gradient_flows_back():
    x = tg.randn(3, 4, dtype=tg.float64, requires_grad=True)
    y = x.cuda()
    assert y.device == "cuda:0" and backend.is_cupy_array(y.data)
    (y * y).sum().backward()
    assert x.grad.device == "cpu"
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.numpy())
    np.testing.assert_array_equal(y.cpu().numpy(), x.numpy())


def test_manual_seed_reproduces_every_random_creation():
    tg.manual_seed(123)
    a = [tg.randn(3, 2).numpy(), tg.rand(4).numpy()]
    tg.manual_seed(123)
    b = [tg.randn(3, 2).numpy(), tg.rand(4).numpy()]
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(tg.randn(3, 2).numpy(), a[0])
    with pytest.raises(TypeError):
        tg.manual_seed(1.5)


def test_rng_state_round_trips():
    tg.manual_seed(5)
    state = tg.get_rng_state()
    a = tg.randn(4).numpy()
    tg.set_rng_state(state)
    np.testing.assert_array_equal(tg.randn(4).numpy(), a)
