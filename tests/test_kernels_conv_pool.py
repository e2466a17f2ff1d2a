"""The CUDA kernels of conv2d (im2col, col2im) and of pooling (max with its argmax, avg,
and their gradients as gathers) against the generic path they replace.

Every comparison runs in two places:

- ``emulated``: on the CPU, in every ``make test``. The kernels' own source is compiled
  with g++ and its grid run thread by thread (``tests/cuda_emulation.py``), with guards
  against reads and writes outside the arrays and against outputs left unwritten; the
  op's own launch code (shapes, grid, argument types) runs as on a GPU. The arithmetic is
  the generic path's, in the same order, so the results must be bit for bit equal.
- ``cuda``: on a real GPU (``gpu``-marked: ``make gpu-check``), kernels switched on, the
  largest difference reported with ``kernels.report_difference``.

The reference is always the same op under ``kernels.disabled()``. A test also checks that
the kernel it is about was launched at all, so it never compares the generic path with
itself.
"""

from __future__ import annotations

import re
import types

import cuda_emulation as emulation
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import tensorgrad as tg
from tensorgrad import kernels
from tensorgrad.backends import cuda as cuda_settings
from tensorgrad.ops import conv, pool

SOURCES = (conv._COLUMNS, pool._POOL)
DTYPES = st.sampled_from([np.float32, np.float64])


class On(emulation.Place):
    sources = SOURCES

    def same(self, kernel: str, case: str, got, want) -> None:
        got, want = self.host(got), self.host(want)
        assert (got.shape, got.dtype) == (want.shape, want.dtype)
        if self.emulated:  # the same operations in the same order: bit for bit
            np.testing.assert_array_equal(got, want)
            return
        finite = np.isfinite(want)
        diff = float(np.abs(got[finite].astype(np.float64) - want[finite]).max(initial=0.0))
        kernels.report_difference(kernel, case, diff)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        tol = 1e-5 if want.dtype == np.float32 else 1e-12
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


@pytest.fixture(scope="module", params=emulation.PLACES)
def on(request) -> On:
    return On(request.param)


def _suffix(dtype) -> str:
    return kernels.FLOAT_SUFFIX[np.dtype(dtype)]


# ------------------------------------------------------------------ geometries


@st.composite
def conv_cases(draw):
    """(x shape, kernel, stride, padding, dilation, dtype) of a valid convolution."""
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, 3)), draw(st.integers(0, 3)))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    size = (draw(st.integers(1, 11)), draw(st.integers(1, 11)))
    for s, k, p, d in zip(size, kernel, padding, dilation):
        assume(s + 2 * p >= d * (k - 1) + 1)  # at least one output
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 4))) + size
    return shape, kernel, stride, padding, dilation, draw(DTYPES)


@st.composite
def pool_cases(draw, max_kernel: int = 4):
    """(x shape, kernel, stride, padding, ceil_mode, dtype) of a valid pooling."""
    kernel = (draw(st.integers(1, max_kernel)), draw(st.integers(1, max_kernel)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    ceil_mode = draw(st.booleans())
    size = (draw(st.integers(1, 10)), draw(st.integers(1, 10)))
    out = [pool.pool_output_size(s, k, st_, p, ceil_mode)
           for s, k, st_, p in zip(size, kernel, stride, padding)]
    assume(min(out) >= 1)
    lead = draw(st.sampled_from([(2, 3), (1, 1), (4,)]))  # (N, C) or one unbatched (C,)
    return lead + size, kernel, stride, padding, ceil_mode, draw(DTYPES)


def _values(rng, shape, dtype, ties: bool = False):
    """Random values; with ``ties`` few distinct ones, so windows hold equal maxima."""
    if ties:
        return rng.integers(-2, 3, shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


# ------------------------------------------------------------------ conv2d


@given(case=conv_cases(), seed=st.integers(0, 2**16), strided=st.booleans())
def test_im2col_matches_generic(on, case, seed, strided):
    shape, kernel, stride, padding, dilation, dtype = case
    x = _values(np.random.default_rng(seed), shape, dtype)
    if strided:  # a non-contiguous input: the kernel path copies it first
        x = np.flip(np.ascontiguousarray(np.flip(x, -1)), -1)  # x, read backwards
    x = on.to(x)
    args = (kernel, stride, padding, dilation)
    with on.kernels() as launched:
        got = conv.im2col(x, *args)
    with kernels.disabled():
        want = conv.im2col(x, *args)
    assert launched == [f"im2col_{_suffix(dtype)}"]
    on.same("im2col", f"{shape} {args}", got, want)


@given(case=conv_cases(), seed=st.integers(0, 2**16))
def test_col2im_matches_generic(on, case, seed):
    shape, kernel, stride, padding, dilation, dtype = case
    ho, wo = (conv.output_size(*a) for a in zip(shape[2:], kernel, stride, padding, dilation))
    rng = np.random.default_rng(seed)
    cols = on.to(_values(rng, (shape[1], *kernel, shape[0], ho, wo), dtype))
    args = (stride, padding, dilation)
    with on.kernels() as launched:
        got = conv.col2im(cols, shape, *args)
    with kernels.disabled():
        want = conv.col2im(cols, shape, *args)
    assert launched == [f"col2im_{_suffix(dtype)}"]
    on.same("col2im", f"{shape} {kernel} {args}", got, want)


def _conv_step(on, x, w, b, gy, conf):
    xt = tg.tensor(x, device=on.device, requires_grad=True)
    wt = tg.tensor(w, device=on.device, requires_grad=True)
    bt = tg.tensor(b, device=on.device, requires_grad=True)
    y = tg.functional.conv2d(xt, wt, bt, **conf)
    y.backward(tg.tensor(gy, device=on.device))
    return [t.data for t in (y, xt.grad, wt.grad, bt.grad)]


@given(case=conv_cases(), groups=st.integers(1, 3), out_per_group=st.integers(1, 3),
       seed=st.integers(0, 2**16))
def test_conv2d_forward_and_backward_match_generic(on, case, groups, out_per_group, seed):
    shape, kernel, stride, padding, dilation, dtype = case
    assume(kernel != (1, 1) or stride != (1, 1) or padding != (0, 0))  # 1×1: no columns
    rng = np.random.default_rng(seed)
    shape = (shape[0], shape[1] * groups) + shape[2:]
    x = _values(rng, shape, dtype)
    w = _values(rng, (out_per_group * groups, shape[1] // groups, *kernel), dtype)
    b = _values(rng, (w.shape[0],), dtype)
    conf = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    ho, wo = (conv.output_size(*a) for a in zip(shape[2:], kernel, stride, padding, dilation))
    gy = _values(rng, (shape[0], w.shape[0], ho, wo), dtype)
    with on.kernels() as launched:
        got = _conv_step(on, x, w, b, gy, conf)
    with kernels.disabled():
        want = _conv_step(on, x, w, b, gy, conf)
    assert f"im2col_{_suffix(dtype)}" in launched
    for name, g, r in zip(("y", "dx", "dw", "db"), got, want):
        on.same("conv2d", f"{name} {shape} {kernel} {conf}", g, r)


# ------------------------------------------------------------------ max pooling


def _max_pool_arrays(x, kernel, stride, padding, ceil_mode, gy_values):
    """y, argmax and dx of max pooling, through the ops' array-level forwards."""
    ctx = types.SimpleNamespace()
    y = pool.MaxPool2d.forward(ctx, x, kernel=kernel, stride=stride, padding=padding,
                               ceil_mode=ceil_mode)
    gy = gy_values(y.shape)
    dx = pool.MaxPool2dScatter.forward(types.SimpleNamespace(), gy, argmax=ctx.argmax,
                                       geometry=ctx.geometry)
    return y, ctx.argmax, dx


@given(case=pool_cases(), seed=st.integers(0, 2**16), ties=st.booleans(),
       specials=st.sampled_from([None, "nan", "-inf"]))
def test_max_pool2d_matches_generic(on, case, seed, ties, specials):
    shape, kernel, stride, padding, ceil_mode, dtype = case
    rng = np.random.default_rng(seed)
    x = _values(rng, shape, dtype, ties)
    if specials:  # NaN sticks to the value; a window of -inf still routes its gradient
        x.reshape(-1)[rng.integers(0, x.size, max(1, x.size // 5))] = float(specials)
    gy = _values(rng, (10_000,), dtype)
    args = (kernel, stride, padding, ceil_mode)
    gy_values = lambda s: on.to(gy[:int(np.prod(s))].reshape(s))  # noqa: E731
    with on.kernels() as launched:
        got = _max_pool_arrays(on.to(x), *args, gy_values)
    with kernels.disabled():
        want = _max_pool_arrays(on.to(x), *args, gy_values)
    names = [f"max_pool2d_{d}_{_suffix(dtype)}_i8" for d in ("forward", "backward")]
    assert launched == names
    case_name = f"{shape} {args} ties={ties} {specials}"
    on.same("max_pool2d", case_name, got[0], want[0])
    np.testing.assert_array_equal(on.host(got[1]), on.host(want[1]))  # argmax: exact
    assert got[1].dtype == want[1].dtype
    on.same("max_pool2d backward", case_name, got[2], want[2])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool2d_with_an_argmax_beyond_int8_matches_generic(on, dtype):
    """A window of more than 127 elements: the argmax is int32."""
    rng = np.random.default_rng(3)
    x = _values(rng, (2, 3, 15, 14), dtype, ties=True)
    args = ((12, 11), (2, 3), (1, 5), True)
    gy_values = lambda s: on.to(_values(np.random.default_rng(4), s, dtype))  # noqa: E731
    with on.kernels() as launched:
        got = _max_pool_arrays(on.to(x), *args, gy_values)
    with kernels.disabled():
        want = _max_pool_arrays(on.to(x), *args, gy_values)
    assert launched == [f"max_pool2d_{d}_{_suffix(dtype)}_i32" for d in ("forward", "backward")]
    assert got[1].dtype == np.int32
    on.same("max_pool2d", "12x11", got[0], want[0])
    np.testing.assert_array_equal(on.host(got[1]), on.host(want[1]))
    on.same("max_pool2d backward", "12x11", got[2], want[2])


# ------------------------------------------------------------------ average pooling


def _avg_pool_arrays(x, kernel, stride, padding, ceil_mode, count_include_pad, gy_values):
    ctx = types.SimpleNamespace()
    y = pool.AvgPool2d.forward(ctx, x, kernel=kernel, stride=stride, padding=padding,
                               ceil_mode=ceil_mode, count_include_pad=count_include_pad)
    dx = pool.AvgPool2dScatter.forward(types.SimpleNamespace(), gy_values(y.shape),
                                       divisor=ctx.divisor, geometry=ctx.geometry,
                                       conf=ctx.conf)
    return y, dx


@given(case=pool_cases(), seed=st.integers(0, 2**16), count_include_pad=st.booleans())
def test_avg_pool2d_matches_generic(on, case, seed, count_include_pad):
    shape, kernel, stride, padding, ceil_mode, dtype = case
    rng = np.random.default_rng(seed)
    x = _values(rng, shape, dtype)
    gy = _values(rng, (10_000,), dtype)
    args = (kernel, stride, padding, ceil_mode, count_include_pad)
    gy_values = lambda s: on.to(gy[:int(np.prod(s))].reshape(s))  # noqa: E731
    with on.kernels() as launched:
        got = _avg_pool_arrays(on.to(x), *args, gy_values)
    with kernels.disabled():
        want = _avg_pool_arrays(on.to(x), *args, gy_values)
    assert launched == [f"avg_pool2d_sum_{_suffix(dtype)}", f"avg_pool2d_backward_{_suffix(dtype)}"]
    on.same("avg_pool2d", f"{shape} {args}", got[0], want[0])
    on.same("avg_pool2d backward", f"{shape} {args}", got[1], want[1])


# ------------------------------------------------------------------ through the ops


def _second_order(on, dtype):
    """Each op's value, gradient and a gradient of its gradient (create_graph), through
    the public functions: the kernels serve the recorded backward as well."""
    rng = np.random.default_rng(5)
    x = tg.tensor(_values(rng, (2, 4, 9, 8), dtype), device=on.device, requires_grad=True)
    w = tg.tensor(_values(rng, (6, 2, 3, 2), dtype), device=on.device, requires_grad=True)
    y = tg.functional.conv2d(x, w, stride=(2, 1), padding=1, dilation=(1, 2), groups=2)
    y = tg.functional.max_pool2d(y.tanh(), 3, stride=2, padding=1, ceil_mode=True)
    y = tg.functional.avg_pool2d(y, 2, stride=1, padding=1, count_include_pad=False)
    gx, gw = tg.autograd.grad((y * y).sum(), (x, w), create_graph=True)
    (gx * gx).sum().backward()
    return [t.data for t in (y, gx, gw, x.grad, w.grad)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_ops_and_their_double_backward_match_generic(on, dtype):
    with on.kernels() as launched:
        got = _second_order(on, dtype)
    with kernels.disabled():
        want = _second_order(on, dtype)
    s = _suffix(dtype)
    assert {f"im2col_{s}", f"max_pool2d_forward_{s}_i8", f"max_pool2d_backward_{s}_i8",
            f"avg_pool2d_sum_{s}", f"avg_pool2d_backward_{s}"} <= set(launched)
    for name, g, r in zip(("y", "dx", "dw", "ddx", "ddw"), got, want):
        on.same("conv+pool", f"{name} {np.dtype(dtype)}", g, r)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_grid_smaller_than_the_work_loops_over_it(on, dtype, monkeypatch):
    """Blocks of 32 threads and at most 2 blocks: every thread runs the grid-stride loop
    many times, as on a GPU for arrays larger than BLOCK·MAX_BLOCKS."""
    monkeypatch.setattr(kernels, "BLOCK", 32)
    monkeypatch.setattr(kernels, "MAX_BLOCKS", 2)
    rng = np.random.default_rng(6)
    x = on.to(_values(rng, (2, 3, 11, 10), dtype, ties=True))
    cols_shape = (3, 3, 2, 2, conv.output_size(11, 3, 2, 1, 1), conv.output_size(10, 2, 1, 2, 2))
    gy_values = lambda s: on.to(_values(np.random.default_rng(7), s, dtype))  # noqa: E731
    steps = {
        "im2col": lambda: [conv.im2col(x, (3, 2), (2, 1), (1, 2), (1, 2))],
        "col2im": lambda: [conv.col2im(on.to(_values(rng, cols_shape, dtype)),
                                       (2, 3, 11, 10), (2, 1), (1, 2), (1, 2))],
        "max_pool2d": lambda: _max_pool_arrays(x, (3, 3), (2, 2), (1, 1), True, gy_values),
        "avg_pool2d": lambda: _avg_pool_arrays(x, (3, 2), (1, 2), (1, 0), False, False,
                                               gy_values),
    }
    for name, step in steps.items():
        rng = np.random.default_rng(8)
        with on.kernels() as launched:
            got = step()
        rng = np.random.default_rng(8)
        with kernels.disabled():
            want = step()
        assert launched and all(n.startswith(name.split("2d")[0]) for n in launched), launched
        for g, r in zip(got, want):
            if g.dtype.kind == "f":
                on.same(name, "small grid", g, r)
            else:
                np.testing.assert_array_equal(on.host(g), on.host(r))


# ------------------------------------------------------------------ argument types


_C_SCALAR = {"int": np.int32, "long long": np.int64}
_C_POINTEE = {"float": np.float32, "double": np.float64, "signed char": np.int8,
              "int": np.int32}


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
    """A fake kernel object records what each op's launch code passes; every scalar must
    be the NumPy type of its C type (np.int32 for int, np.int64 for long long: a Python
    int would be passed with the wrong width on a GPU), every pointer an array of its
    element type. Every entry point of both sources must be reached."""
    calls = {}

    class Recorder:
        def __init__(self, source, name):
            self.source, self.name = source, name

        def __call__(self, grid, block, args):
            calls[self.name] = (grid, block, args)

    monkeypatch.setattr(kernels, "use_kernel", lambda a: isinstance(a, np.ndarray))
    for source in SOURCES:
        monkeypatch.setattr(source, "function", lambda name, s=source: Recorder(s, name),
                            raising=False)
    for dtype in (np.float32, np.float64):
        x = np.ones((2, 3, 14, 13), dtype)
        conv.col2im(conv.im2col(x, (3, 3), (2, 2), (1, 1), (1, 1)), x.shape, (2, 2), (1, 1),
                    (1, 1))
        for k in ((3, 3), (12, 12)):  # int8 and int32 argmax
            _max_pool_arrays(x, k, (2, 2), (1, 1), False, lambda s, d=dtype: np.ones(s, d))
        _avg_pool_arrays(x, (3, 3), (2, 2), (1, 1), False, True, lambda s, d=dtype: np.ones(s, d))
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
        total = next(a for (c, p), a in zip(declared, args) if c == "long long")
        assert block == (kernels.BLOCK,)
        assert grid == (min(-(-int(total) // kernels.BLOCK), kernels.MAX_BLOCKS),)


# ------------------------------------------------------------------ the harness can fail


def _scratch_source(code: str, *functions: str) -> kernels.CudaSource:
    return kernels.CudaSource(f"test-only-{functions[0]}", code, functions=functions)


_COPY = r"""
extern "C" __global__ void copy_f32(const float* x, float* y, long long n, int shift,
                                    int every) {
    // each thread copies y[i] = x[i + shift], for the i that are multiples of every
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (long long)blockDim.x * gridDim.x) {
        if (i % every == 0) y[i + (shift < 0 ? shift : 0)] = x[i + (shift > 0 ? shift : 0)];
    }
}
"""


@pytest.mark.cpu_only
@pytest.mark.parametrize("shift, every, error", [
    (0, 1, None),  # a right kernel passes
    (1, 1, "read outside an input"),  # reads one past the end of x
    (0, 2, "left 5 of 10 elements of y unwritten"),
    (-1, 1, "wrote outside y"),  # writes one before the start of y
])
def test_the_emulation_catches_out_of_bounds_and_unwritten_outputs(shift, every, error):
    emulation.require()
    src = _scratch_source(_COPY, "copy_f32")
    try:
        x, y = np.arange(10, dtype=np.float32), np.zeros(10, np.float32)
        args = (x, y, np.int64(10), *kernels.int32s(shift, every))
        with emulation.active(src):
            if error is None:
                kernels.launch(src, "copy_f32", 10, args)
                np.testing.assert_array_equal(y, x)
            else:
                with pytest.raises(emulation.EmulationError, match=error):
                    kernels.launch(src, "copy_f32", 10, args)
    finally:
        del kernels.SOURCES[src.name]


@pytest.mark.cpu_only
def test_the_emulation_refuses_kernels_whose_threads_cooperate():
    emulation.require()
    src = _scratch_source(r"""
    extern "C" __global__ void shared_sum(const float* x, float* y) {
        __shared__ float part[256];
        part[threadIdx.x] = x[threadIdx.x];
        __syncthreads();
        if (threadIdx.x == 0) y[0] = part[0] + part[1];
    }""", "shared_sum")
    try:
        with pytest.raises(kernels.CompileError, match="__syncthreads|__shared__"):
            emulation.build(src)
    finally:
        del kernels.SOURCES[src.name]


# ------------------------------------------------------------------ launch and the switch


@pytest.mark.cpu_only
def test_launch_refuses_arguments_that_do_not_match_the_signature(monkeypatch):
    src = _scratch_source(_COPY, "copy_f32")
    launched = []
    monkeypatch.setattr(src, "function", lambda name: lambda g, b, a: launched.append((g, b)),
                        raising=False)
    try:
        x, y = np.zeros(10, np.float32), np.zeros(10, np.float32)
        good = (x, y, np.int64(10), np.int32(0), np.int32(1))
        bad = {
            "shift \\(int\\) needs a np.int32, got int": (x, y, np.int64(10), 0, np.int32(1)),
            "n \\(long long\\) needs a np.int64, got int32":
                (x, y, np.int32(10), np.int32(0), np.int32(1)),
            "x \\(const float\\*\\) needs a C-contiguous float32 array, got ndarray of dtype "
            "float64": (x.astype(np.float64),) + good[1:],
            "y \\(float\\*\\) needs a C-contiguous": (x, np.zeros(20, np.float32)[::2])
            + good[2:],
            "takes 5 arguments, got 4": good[:4],
        }
        for message, args in bad.items():
            with pytest.raises(TypeError, match=message):
                kernels.launch(src, "copy_f32", 10, args)
        assert launched == []
        kernels.launch(src, "copy_f32", 0, good)  # nothing to do: no empty grid launched
        assert launched == []
        kernels.launch(src, "copy_f32", kernels.BLOCK + 1, good)
        kernels.launch(src, "copy_f32", kernels.BLOCK * (kernels.MAX_BLOCKS + 5), good)
        assert launched == [((2,), (kernels.BLOCK,)), ((kernels.MAX_BLOCKS,), (kernels.BLOCK,))]
        with pytest.raises(ValueError, match="2147483648 does not fit"):
            kernels.int32s(1, 2**31)
    finally:
        del kernels.SOURCES[src.name]


@pytest.mark.cpu_only
def test_the_kernels_are_off_unless_switched_on(monkeypatch):
    for value, on in (("", False), ("0", False), ("1", True), (None, False)):
        if value is None:
            monkeypatch.delenv("TG_CUDA_KERNELS", raising=False)
        else:
            monkeypatch.setenv("TG_CUDA_KERNELS", value)
        assert cuda_settings.kernels_from_environment() is on
    before = cuda_settings.kernels
    try:
        with pytest.raises(TypeError, match="bool"):
            tg.backends.cuda.kernels = 1
        with pytest.raises(AttributeError, match="kernel'"):
            tg.backends.cuda.kernel = True
        tg.backends.cuda.kernels = True
        assert cuda_settings.kernels is True
    finally:
        tg.backends.cuda.kernels = before


@pytest.mark.cpu_only
def test_gpu_check_runs_the_suite_with_the_kernels_on(tmp_path, monkeypatch):
    import sys
    import time
    from pathlib import Path

    benchmarks = str(Path(__file__).resolve().parents[1] / "benchmarks")
    if benchmarks not in sys.path:
        sys.path.insert(0, benchmarks)
    import gpu_check

    seen = {}

    class Stop(Exception):
        pass

    def run_capped(cmd, log, budget, env):
        seen.update(env)
        raise Stop

    monkeypatch.setattr(gpu_check, "run_capped", run_capped)
    run = gpu_check.Run.__new__(gpu_check.Run)
    run.out, run.dry, run.parts, run.start = tmp_path, False, ["suite"], time.perf_counter()
    with pytest.raises(Stop):
        run.suite()
    assert seen["TG_CUDA_KERNELS"] == "1" and seen["TG_TEST_DEVICE"] == "cuda"
