"""The CUDA kernels of the softmax family (softmax, log_softmax and their gradients) and of
the fused cross-entropy (forward with the saved softmax, backward) against the generic
path they replace.

Every comparison runs in two places, as in ``test_kernels_conv_pool.py``:

- ``emulated``: on the CPU, in every ``make test``: the kernels' own source built with g++
  and run thread by thread (``tests/cuda_emulation.py``), guarded against reads and writes
  outside the arrays and outputs left unwritten; the ops' own launch code runs.
- ``cuda``: on a real GPU (``gpu``-marked: ``make gpu-check``), the largest difference
  reported with ``kernels.report_difference``.

The reference is the same op under ``kernels.disabled()``. Unlike im2col or pooling, these
results are not bit for bit the generic path's: the kernels accumulate each row's sums in
double, one thread walking the row, where NumPy sums pairwise in the array's dtype (and
its exp/log are its own SIMD routines, not the C library's). So values are compared with a
relative tolerance of 1e-6 (float32) / 1e-12 (float64), and an absolute one of the same
size times the magnitude of the row sums involved (Σ|g| for a gradient: what a sum's
rounding error is proportional to). Exactly equal are: where the results are NaN or ±inf
(every case), and the cross-entropy gradient without class weights given the same saved
softmax (``test_cross_entropy_backward_without_weights_is_bit_exact``: no sum in it).
"""

from __future__ import annotations

import re
import types

import cuda_emulation as emulation
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tensorgrad as tg
from tensorgrad import kernels
from tensorgrad.ops import loss, reduce

SOURCES = (reduce._SOFTMAX, loss._CROSS_ENTROPY)
DTYPES = st.sampled_from([np.float32, np.float64])
TOLERANCE = {np.dtype(np.float32): 1e-6, np.dtype(np.float64): 1e-12}


class On(emulation.Place):
    sources = SOURCES

    def close(self, kernel: str, case: str, got, want, scale: float = 1.0) -> None:
        """Equal NaN/±inf positions; finite values within the dtype's tolerance (relative,
        and absolute times ``scale``, the magnitude of the sums behind them)."""
        got, want = self.host(got), self.host(want)
        assert (got.shape, got.dtype) == (want.shape, want.dtype)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        inf = np.isinf(want)
        np.testing.assert_array_equal(got[inf], want[inf])
        finite = np.isfinite(want)
        diff = float(np.abs(got[finite].astype(np.float64) - want[finite]).max(initial=0.0))
        if not self.emulated:
            kernels.report_difference(kernel, case, diff)
        tol = TOLERANCE[want.dtype] * (1 if self.emulated else 10)  # a GPU's exp: ~2 ulp
        np.testing.assert_allclose(got[finite], want[finite], rtol=tol, atol=tol * scale)


@pytest.fixture(scope="module", params=emulation.PLACES)
def on(request) -> On:
    return On(request.param)


def _suffix(dtype) -> str:
    return kernels.FLOAT_SUFFIX[np.dtype(dtype)]


def _ctx():
    """A stand-in for the autograd Context: what forward saves, backward reads."""
    ctx = types.SimpleNamespace()
    ctx.save_for_backward = lambda *a: setattr(ctx, "saved_tensors", a)
    return ctx


SPECIALS = [None, "huge", "-inf row", "-inf", "+inf", "nan"]


def _logits(rng, shape, dtype, special):
    """Random logits, with some rows (or entries) made special: huge logits (±1e4 in
    float32, ±1e300 in float64: e^x overflows without the max shift), a row of −inf, a
    few −inf, +inf or NaN entries."""
    x = (3 * rng.standard_normal(shape)).astype(dtype)
    rows = x.reshape(-1, shape[-1])
    picked = rng.integers(0, rows.shape[0], max(1, rows.shape[0] // 3))
    if special == "huge":
        big = 1e4 if np.dtype(dtype) == np.float32 else 1e300
        rows[picked] = (rng.uniform(-1, 1, (len(picked), shape[-1])) * big).astype(dtype)
    elif special == "-inf row":
        rows[picked] = -np.inf
    elif special is not None:
        flat = x.reshape(-1)
        flat[rng.integers(0, flat.size, max(1, flat.size // 7))] = float(special)
    return x


# ------------------------------------------------------------------ softmax, log_softmax


@st.composite
def row_cases(draw):
    """(shape, dtype): leading axes of any size, a last (reduced) axis of 1 to 300."""
    lead = tuple(draw(st.lists(st.integers(1, 4), max_size=2)))
    n = draw(st.one_of(st.integers(1, 12), st.integers(13, 300)))
    return lead + (n,), draw(DTYPES)


def _rows_arrays(op, x, g):
    """y = op(x) along the last axis and its input gradient for g, on raw arrays."""
    ctx = _ctx()
    y = op.forward(ctx, x, dim=x.ndim - 1)
    ctx.dim = x.ndim - 1
    return y, op.backward(ctx, g)


@given(case=row_cases(), seed=st.integers(0, 2**16), special=st.sampled_from(SPECIALS),
       op=st.sampled_from(["softmax", "log_softmax"]))
def test_softmax_and_log_softmax_match_generic(on, case, seed, special, op):
    shape, dtype = case
    rng = np.random.default_rng(seed)
    x = on.to(_logits(rng, shape, dtype, special))
    g_host = rng.standard_normal(shape).astype(dtype)
    g = on.to(g_host)
    fn = reduce.Softmax if op == "softmax" else reduce.LogSoftmax
    with np.errstate(invalid="ignore", over="ignore"):  # inf − inf in the special rows
        with on.kernels() as launched:
            got = _rows_arrays(fn, x, g)
        with kernels.disabled():
            want = _rows_arrays(fn, x, g)
    assert launched == [f"{op}_{d}_{_suffix(dtype)}" for d in ("forward", "backward")]
    case_name = f"{shape} {special}"
    # log_softmax's values are as large as the logits' spread: relative, with atol 1
    on.close(op, case_name, got[0], want[0])
    row_sums = float(np.abs(g_host).sum(axis=-1).max())
    on.close(f"{op} backward", case_name, got[1], want[1], scale=max(1.0, row_sums))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_public_functions_and_their_double_backward_match_generic(on, dtype):
    """Through tg.softmax / log_softmax: the forward kernels serve every pass; under
    create_graph the backward formula runs on traced arrays, never a kernel."""
    rng = np.random.default_rng(5)
    values = rng.standard_normal((3, 4, 9)).astype(dtype)

    def run():
        x = tg.tensor(values, device=on.device, requires_grad=True)
        y = tg.softmax(x, dim=-1) * tg.log_softmax(x * 2, dim=2)
        (gx,) = tg.autograd.grad(y.sum(), (x,), create_graph=True)
        (gx * gx).sum().backward()
        return [t.data for t in (y, gx, x.grad)]

    with on.kernels() as launched:
        got = run()
    with kernels.disabled():
        want = run()
    s = _suffix(dtype)
    assert {f"softmax_forward_{s}", f"log_softmax_forward_{s}"} <= set(launched)
    for name, g, r in zip(("y", "dx", "ddx"), got, want):
        on.close("softmax family", f"{name} {np.dtype(dtype)}", g, r, scale=10.0)


def test_other_axes_and_layouts_take_the_generic_path(on):
    """Only the last axis of a C-contiguous array goes to the kernels."""
    rng = np.random.default_rng(2)
    x = on.to(rng.standard_normal((4, 6)))
    with on.kernels() as launched:
        for op in (reduce.Softmax, reduce.LogSoftmax):
            op.forward(_ctx(), x, dim=0)  # not the last axis
            op.forward(_ctx(), x.T, dim=1)  # the last axis, but not contiguous
            op.forward(_ctx(), x[:0], dim=1)  # empty
            op.forward(_ctx(), x.astype(np.float16), dim=1)  # no kernel for float16
        x3 = tg.tensor(rng.standard_normal((2, 3, 4)), device=on.device)
        tg.functional.cross_entropy(x3, tg.tensor(np.zeros((2, 4), np.int64), device=on.device))
    assert launched == []


# ------------------------------------------------------------------ cross-entropy


@st.composite
def cross_entropy_cases(draw):
    """(N, C, dtype, reduction, label_smoothing, weighted, ignored fraction)."""
    return (draw(st.integers(1, 9)), draw(st.one_of(st.integers(1, 10), st.integers(11, 200))),
            draw(DTYPES), draw(st.sampled_from(loss.REDUCTIONS)),
            draw(st.sampled_from([0.0, 0.1, 1.0])), draw(st.booleans()),
            draw(st.sampled_from([0.0, 0.3, 1.0])))


def _cross_entropy_step(on, x, target, weight, reduction, eps):
    """The loss and the input gradient (for a gradient of ones), through the public op."""
    xt = tg.tensor(x, device=on.device, requires_grad=True)
    kw = {} if weight is None else {"weight": tg.tensor(weight, device=on.device)}
    out = tg.functional.cross_entropy(xt, tg.tensor(target, device=on.device), reduction,
                                      eps, **kw)
    out.backward(tg.ones_like(out))
    return out.data, xt.grad.data


@given(case=cross_entropy_cases(), seed=st.integers(0, 2**16),
       special=st.sampled_from(SPECIALS))
def test_cross_entropy_matches_generic(on, case, seed, special):
    n, c, dtype, reduction, eps, weighted, ignored = case
    rng = np.random.default_rng(seed)
    x = _logits(rng, (n, c), dtype, special)
    target = rng.integers(0, c, n)
    target[rng.random(n) < ignored] = -100  # the default ignore_index
    weight = rng.uniform(0.1, 3, c).astype(dtype) if weighted else None
    args = (target, weight, reduction, eps)
    with np.errstate(invalid="ignore", over="ignore"):
        with on.kernels() as launched:
            got = _cross_entropy_step(on, x, *args)
        with kernels.disabled():
            want = _cross_entropy_step(on, x, *args)
    assert launched == [f"cross_entropy_{d}_{_suffix(dtype)}" for d in ("forward", "backward")]
    case_name = f"({n}, {c}) {reduction} eps={eps} weighted={weighted} {special}"
    on.close("cross_entropy", case_name, got[0], want[0], scale=max(1.0, float(n)))
    on.close("cross_entropy backward", case_name, got[1], want[1], scale=3.0)


@pytest.mark.parametrize("reduction", loss.REDUCTIONS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_backward_without_weights_is_bit_exact(on, dtype, reduction):
    """Given the same saved softmax, the gradient (p − q)·scale·kept has no sum in it: the
    kernel does the generic path's operations in its order, so every bit agrees."""
    rng = np.random.default_rng(7)
    n, c = 11, 37
    x = on.to(rng.standard_normal((n, c)).astype(dtype))
    target = rng.integers(0, c, n)
    valid = on.to(rng.random(n) > 0.3)
    target = on.to(target)
    with kernels.disabled():
        ctx = _ctx()
        loss.CrossEntropy.forward(ctx, x, target, None, reduction=reduction,
                                  label_smoothing=0.25, valid=valid)
    g = on.to(rng.standard_normal(n).astype(dtype) if reduction == "none"
              else np.array(1.5, dtype))
    with on.kernels() as launched:
        got = loss.CrossEntropy.backward(ctx, g)[0]
    with kernels.disabled():
        want = loss.CrossEntropy.backward(ctx, g)[0]
    assert launched == [f"cross_entropy_backward_{_suffix(dtype)}"]
    if on.emulated:
        np.testing.assert_array_equal(got, want)
    else:
        on.close("cross_entropy backward", f"same p {reduction}", got, want)


@pytest.mark.cpu_only
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_kernels_agree_with_closed_forms(dtype):
    """Not only with the generic path: softmax([0, log 2, log 5]) = [1, 2, 5] / 8, and the
    cross-entropy of a row is log Σe^x − x_t, its gradient softmax − onehot (PyTorch's
    definitions), on the emulated kernels."""
    emulation.require()
    x = np.log(np.array([[1.0, 2.0, 5.0], [4.0, 2.0, 2.0]])).astype(dtype)
    with emulation.active(*SOURCES):
        s = reduce.Softmax.forward(_ctx(), x, dim=1)
        xt = tg.tensor(x, requires_grad=True)
        out = tg.functional.cross_entropy(xt, tg.tensor(np.array([2, 0])), reduction="sum")
        out.backward()
    probs = np.array([[1, 2, 5], [4, 2, 2]]) / 8
    tol = TOLERANCE[np.dtype(dtype)] * 4
    np.testing.assert_allclose(s, probs, rtol=tol)
    np.testing.assert_allclose(out.item(), -np.log(5 / 8) - np.log(4 / 8), rtol=tol)
    np.testing.assert_allclose(xt.grad.data, probs - np.eye(3)[[2, 0]], rtol=tol, atol=tol)


@pytest.mark.cpu_only
def test_a_target_out_of_range_gives_nan_not_a_read_out_of_bounds():
    """On a GPU the range check of the targets is deferred (it raises at the next
    transfer): meanwhile the kernels must not read outside the row. The emulation's guards
    would report such a read; the row becomes NaN instead."""
    emulation.require()
    x = np.zeros((3, 4))
    target = np.array([1, 4, 9])
    with emulation.active(*SOURCES):
        per_row, p = loss._cross_entropy_kernel(x, target, None, 0.0, None)
        ctx = types.SimpleNamespace(reduction="none", count=None, valid=None,
                                    label_smoothing=0.0)
        dx = loss._cross_entropy_backward_kernel(ctx, p, target, [], np.ones(3))
    np.testing.assert_array_equal(np.isnan(per_row), [False, True, True])
    np.testing.assert_array_equal(np.isnan(dx).all(axis=1), [False, True, True])
    np.testing.assert_allclose(per_row[0], np.log(4))


# ------------------------------------------------------------------ grids and arguments


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_grid_smaller_than_the_rows_loops_over_them(on, dtype, monkeypatch):
    """Blocks of 32 threads, at most 2 blocks, 300 rows: each thread takes several rows."""
    monkeypatch.setattr(kernels, "BLOCK", 32)
    monkeypatch.setattr(kernels, "MAX_BLOCKS", 2)
    rng = np.random.default_rng(6)
    x = rng.standard_normal((300, 5)).astype(dtype)
    target = rng.integers(0, 5, 300)
    with on.kernels() as launched:
        got = [*_rows_arrays(reduce.LogSoftmax, on.to(x), on.to(x)),
               *_cross_entropy_step(on, x, target, None, "mean", 0.0)]
    with kernels.disabled():
        want = [*_rows_arrays(reduce.LogSoftmax, on.to(x), on.to(x)),
                *_cross_entropy_step(on, x, target, None, "mean", 0.0)]
    assert len(launched) == 4
    for g, r in zip(got, want):
        on.close("small grid", "300 rows", g, r, scale=10.0)


_C_SCALAR = {"int": np.int32, "long long": np.int64, "float": np.float32,
             "double": np.float64}
_C_POINTEE = {"float": np.float32, "double": np.float64, "long long": np.int64}


def _declared(code: str, name: str) -> list[tuple[str, bool]]:
    """(C type without const/pointer, is a pointer) of each parameter of kernel ``name``,
    read from the source independently of ``kernels.CudaSource.signature``."""
    params = re.search(rf'extern "C" __global__ void {name}\(([^)]*)\)', code).group(1)
    out = []
    for p in params.split(","):
        words = [w for w in re.split(r"[\s*]+", p) if w and w not in ("const", "__restrict__")]
        out.append((" ".join(words[:-1]), "*" in p))
    return out


@pytest.mark.cpu_only
def test_every_launch_passes_exactly_the_types_its_c_signature_declares(monkeypatch):
    """A fake kernel records what the ops' launch code passes: every scalar the NumPy type
    of its C type (np.int32 for int, np.int64 for long long, np.float32 for float...),
    every pointer a C-contiguous array of its element type; every entry point reached."""
    calls = {}

    class Recorder:
        def __init__(self, name):
            self.name = name

        def __call__(self, grid, block, args):
            calls[self.name] = (grid, block, args)

    monkeypatch.setattr(kernels, "use_kernel", lambda a: isinstance(a, np.ndarray))
    for source in SOURCES:
        monkeypatch.setattr(source, "function", Recorder, raising=False)
    for dtype in (np.float32, np.float64):
        x = np.ones((5, 3), dtype)
        for op in (reduce.Softmax, reduce.LogSoftmax):
            _rows_arrays(op, x, x[:, ::-1])  # a non-contiguous gradient is copied
        ctx = _ctx()
        loss.CrossEntropy.forward(ctx, x, np.array([0, 1, 2, 0, 1], np.int32),
                                  np.ones(3, dtype), reduction="mean", label_smoothing=0.1,
                                  valid=np.array([True, False, True, True, True]))
        loss.CrossEntropy.backward(ctx, np.array(1.0, dtype))
    assert sorted(calls) == sorted(f for s in SOURCES for f in s.functions)
    for name, (grid, block, args) in calls.items():
        code = next(s.code for s in SOURCES if name in s.functions)
        declared = _declared(code, name)
        assert len(args) == len(declared), name
        for (ctype, pointer), arg in zip(declared, args):
            if pointer:
                assert isinstance(arg, np.ndarray) and arg.dtype == _C_POINTEE[ctype], name
                assert arg.flags.c_contiguous, name
            else:
                assert type(arg) is _C_SCALAR[ctype], (name, ctype, type(arg))
        assert block == (kernels.BLOCK,)
        assert grid == (1,)  # 5 rows: one block
