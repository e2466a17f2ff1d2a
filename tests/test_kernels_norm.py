"""The CUDA kernels of batch norm (per-channel sums in two deterministic launches, the
normalize-and-affine and the input gradient as elementwise launches) against the generic
path they replace, and their sums against float64 NumPy.

Every comparison runs in two places, as in ``test_kernels_conv_pool.py``:

- ``emulated``: on the CPU, in every ``make test``: the kernels' own source built with g++
  and its grid run thread by thread (``tests/cuda_emulation.py``, with guards against reads
  and writes outside the arrays and outputs left unwritten), launched by the op's own code.
- ``cuda``: on a real GPU (``gpu``-marked: ``make gpu-check``), the largest difference
  reported with ``kernels.report_difference``.

The reference is the same op under ``kernels.disabled()``, in float64 (float32 results
are compared with the float64 generic path's, rounded to float32): the kernels accumulate
their sums in float64 (float32 inputs too) in a fixed order of P partial sums per channel,
so they are closer to it than the float32 generic path, whose einsum sums round in
float32. Not bit for bit: the orders of the sums differ. Tolerance, relative to the
largest magnitude of the compared array (at least 1), times the condition number of the
centring, 1 + |μ|/σ (largest over the channels; μ is rounded to the dtype, and the
float64 reference's own Σg·x - μ·Σg cancels): float64 1e-12; float32 1e-5 (a few
float32 roundings of μ, s, γ·s and the elementwise results, whose terms in dx cancel:
the largest seen over 1,200 drawn cases was 1.4e-6).
"""

from __future__ import annotations

import cuda_emulation as emulation
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import tensorgrad as tg
from tensorgrad import kernels
from tensorgrad.ops import norm

TOLERANCE = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}


class On(emulation.Place):
    sources = (norm._BATCH_NORM,)

    def close(self, what: str, case: str, got, want, cond: float = 1.0) -> None:
        """|got - want| <= TOLERANCE · cond · max(1, max |want|)."""
        got, want = self.host(got), self.host(want)
        assert (got.shape, got.dtype) == (want.shape, want.dtype), what
        diff = float(np.abs(got.astype(np.float64) - want).max(initial=0.0))
        if not self.emulated:
            kernels.report_difference("batch_norm", f"{what} {case}", diff)
        scale = max(1.0, float(np.abs(want).max(initial=0.0)))
        assert diff <= TOLERANCE[want.dtype] * cond * scale, f"{what} {case}: |diff| {diff}"


@pytest.fixture(scope="module", params=emulation.PLACES)
def on(request) -> On:
    return On(request.param)


@st.composite
def batch_norm_cases(draw):
    """(x shape, dtype, training): (N, C), (N, C, L) or (N, C, H, W), small and odd sizes,
    N = 1 or L = 1 included (training needs more than one value per channel), and more
    values per channel than the kernels' partial sums (10×10 spatial)."""
    spatial = draw(st.sampled_from([(), (1,), (5,), (1, 1), (3, 1), (2, 3), (5, 7), (10, 10)]))
    shape = (draw(st.integers(1, 4)), draw(st.integers(1, 5))) + spatial
    training = draw(st.booleans())
    assume(not training or shape[0] * int(np.prod(spatial)) > 1)
    return shape, draw(st.sampled_from([np.float32, np.float64])), training


def _batch_norm_step(on, x, w, b, running, gy, training, x_grad=True):
    """y, the gradients and the running statistics of one batch_norm forward/backward."""
    xt = tg.tensor(x, device=on.device, requires_grad=x_grad)
    wt = None if w is None else tg.tensor(w, device=on.device, requires_grad=True)
    bt = None if b is None else tg.tensor(b, device=on.device, requires_grad=True)
    rm, rv = (tg.tensor(r.copy(), device=on.device) for r in running)
    y = tg.functional.batch_norm(xt, rm, rv, wt, bt, training=training, momentum=0.3)
    y.backward(tg.tensor(gy, device=on.device))
    out = {"y": y.data, "running_mean": rm.data, "running_var": rv.data}
    for name, t in (("dx", xt), ("dweight", wt), ("dbias", bt)):
        if t is not None and t.requires_grad:
            out[name] = t.grad.data
    return out


@given(case=batch_norm_cases(), affine=st.sampled_from(["both", "weight", "none"]),
       x_grad=st.booleans(), offset=st.sampled_from([0.0, 50.0]), seed=st.integers(0, 2**16))
def test_batch_norm_matches_generic(on, case, affine, x_grad, offset, seed):
    shape, dtype, training = case
    assume(x_grad or affine != "none")  # something to differentiate
    rng = np.random.default_rng(seed)
    c = shape[1]
    x = (rng.standard_normal(shape) * 2 + offset).astype(dtype)
    w = rng.standard_normal(c).astype(dtype) if affine != "none" else None
    b = rng.standard_normal(c).astype(dtype) if affine == "both" else None
    running = (rng.standard_normal(c).astype(dtype), (rng.random(c) + 0.5).astype(dtype))
    gy = rng.standard_normal(shape).astype(dtype)
    def inputs(as_dtype):
        arrays = [None if a is None else on.to(a.astype(as_dtype)) for a in (x, w, b, gy)]
        stats = tuple(on.to(r.astype(as_dtype)) for r in running)
        return (arrays[0], arrays[1], arrays[2], stats, arrays[3], training, x_grad)

    with on.kernels() as launched:
        got = _batch_norm_step(on, *inputs(dtype))
    with kernels.disabled():  # the reference: the generic path in float64, cast to dtype
        want = _batch_norm_step(on, *inputs(np.float64))
    want = {name: on.host(a).astype(dtype) for name, a in want.items()}
    # results carry the rounding of μ to the dtype (x - μ loses |μ|/σ ulps of the
    # result): the error bound grows with that condition number, for either path
    x64 = x.astype(np.float64)
    mean, var = ((x64.mean(axis=(0, *range(2, x.ndim))), x64.var(axis=(0, *range(2, x.ndim))))
                 if training else tuple(r.astype(np.float64) for r in running))
    cond = float((1 + np.abs(mean) / np.sqrt(var + 1e-5)).max())
    suffix = kernels.FLOAT_SUFFIX[np.dtype(dtype)]
    assert f"batch_norm_forward_{suffix}" in launched  # the kernel path ran at all
    assert f"batch_norm_partials_{suffix}" in launched  # (the backward's sums, at least)
    assert (f"batch_norm_backward_{suffix}" in launched) == x_grad
    assert got.keys() == want.keys()
    for name in want:
        on.close(name, f"{shape} {affine} training={training}", got[name], want[name], cond)


@given(shape=st.sampled_from([(2, 1, 1), (3, 4, 1), (1, 2, 300), (5, 3, 7), (2, 1, 129)]),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**16))
def test_channel_sums_are_float64_sums(on, shape, dtype, seed):
    # the reduction alone, modes 0-2, against NumPy's float64 sums over (N, L): fewer
    # values per channel than parts, and more (300 > _PARTS), whatever the split
    rng = np.random.default_rng(seed)
    u = (rng.standard_normal(shape) + 3).astype(dtype)
    v = rng.standard_normal(shape).astype(dtype)
    mean = rng.standard_normal(shape[1])
    u64, v64 = u.astype(np.float64), v.astype(np.float64)
    centred = u64 - mean[:, None]
    want = [u64.sum(axis=(0, 2)), (centred * centred).sum(axis=(0, 2)),
            np.stack([u64.sum(axis=(0, 2)), (u64 * (v64 - mean[:, None])).sum(axis=(0, 2))])]
    with on.kernels() as launched:
        got = [norm._channel_sums(on.to(u), on.to(v), on.to(mean), mode) for mode in (0, 1, 2)]
    assert launched.count("batch_norm_reduce") == 3
    for mode, (g, w) in enumerate(zip(got, want)):
        g = on.host(g)
        assert g.dtype == np.float64 and g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12, err_msg=f"mode {mode}")


def test_the_variance_is_centred(on):
    # two passes (μ, then Σ(x - μ)²): a float32 channel far from zero keeps its variance,
    # which Σx² - nμ² would lose to cancellation
    rng = np.random.default_rng(0)
    x = (1e4 + rng.standard_normal((8, 2, 50))).astype(np.float32)
    rm, rv = tg.zeros(2, device=on.device), tg.ones(2, device=on.device)
    with on.kernels():
        tg.functional.batch_norm(tg.tensor(on.to(x), device=on.device), rm, rv,
                                 training=True, momentum=1.0)
    x64 = x.astype(np.float64)
    want_var = x64.var(axis=(0, 2), ddof=1)  # momentum 1: the batch's unbiased variance
    np.testing.assert_allclose(on.host(rv.data), want_var, rtol=1e-6)
    np.testing.assert_allclose(on.host(rm.data), x64.mean(axis=(0, 2)), rtol=1e-7)


def test_non_contiguous_input_takes_the_generic_path(on):
    rng = np.random.default_rng(1)
    x = on.to(np.ascontiguousarray(rng.standard_normal((3, 2, 4, 5)).transpose(0, 1, 3, 2)))
    x = x.transpose(0, 1, 3, 2)  # a (3, 2, 5, 4) view that is not C-contiguous
    run = lambda: tg.functional.batch_norm(  # noqa: E731
        tg.tensor(x, device=on.device), None, None, training=True).data
    with on.kernels() as launched:
        got = run()
    with kernels.disabled():
        want = run()
    assert launched == []
    np.testing.assert_array_equal(on.host(got), on.host(want))


@pytest.mark.parametrize("shape", [(0, 2, 3), (2, 3, 0), (2, 0, 4)])
def test_empty_input_takes_the_generic_path(on, shape):
    x = tg.zeros(shape, device=on.device)
    rm, rv = tg.zeros(shape[1], device=on.device), tg.ones(shape[1], device=on.device)
    with on.kernels() as launched:
        y = tg.functional.batch_norm(x, rm, rv, training=False)
    assert launched == [] and tuple(y.shape) == shape


@pytest.mark.cpu_only
def test_the_kernels_take_exactly_their_c_argument_types():
    source = norm._BATCH_NORM
    assert source.signature("batch_norm_partials_f32") == (
        ("const float*", "u"), ("const float*", "v"), ("const double*", "mean"),
        ("double*", "partials"), ("int", "n"), ("int", "c"), ("int", "l"), ("int", "parts"),
        ("int", "mode"))
    partials, sums = np.zeros(6), np.zeros(2)
    kernels.check_arguments(source, "batch_norm_reduce", (partials, sums, *kernels.int32s(2, 3)))
    with pytest.raises(TypeError, match="rows"):  # a Python int for an int
        kernels.check_arguments(source, "batch_norm_reduce", (partials, sums, 2, np.int32(3)))
    with pytest.raises(TypeError, match="partials"):  # float32 partials: they are float64
        kernels.check_arguments(source, "batch_norm_reduce",
                                (partials.astype(np.float32), sums, *kernels.int32s(2, 3)))
    x, y = np.zeros((2, 3, 4), np.float32), np.zeros((2, 3, 4), np.float32)
    per_channel = np.zeros(3, np.float32)
    with pytest.raises(TypeError, match="total"):  # the element count is a long long
        kernels.check_arguments(source, "batch_norm_forward_f32",
                                (x, per_channel, per_channel, per_channel, y, np.int32(24),
                                 *kernels.int32s(3, 4)))
    with pytest.raises(TypeError, match=r"x \(const float\*\)"):  # float64 for float32
        kernels.check_arguments(source, "batch_norm_forward_f32",
                                (x.astype(np.float64), per_channel, per_channel, per_channel,
                                 y, np.int64(24), *kernels.int32s(3, 4)))
