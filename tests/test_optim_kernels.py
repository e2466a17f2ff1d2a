"""The CUDA kernels of the optimizer updates (nn/optim/fused.py) against the generic
update they replace: SGD (momentum, dampening, Nesterov, weight decay), RMSprop
(centered, momentum), Adam and AdamW (amsgrad), maximize, 0-d parameters.

Every comparison runs in two places, as in ``test_kernels_conv_pool.py``:

- ``emulated``: on the CPU, in every ``make test``: the kernels' source compiled with g++
  and run thread by thread (``tests/cuda_emulation.py``), through the optimizers' own
  dispatch and launch code. Same operations in the same order: equal bit for bit.
- ``cuda``: on a real GPU (``gpu``-marked: ``make gpu-check``), kernels switched on. The
  kernels are compiled with --fmad=false, so they are expected to be bit for bit equal
  there too; the largest difference is reported with ``kernels.report_difference``.

The reference is the same optimizer stepping a copy of the parameters under
``kernels.disabled()``. Each test checks that the kernel it is about ran at all.
"""

from __future__ import annotations

import cuda_emulation as emulation
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nn
import tensorgrad as tg
from nn.optim import fused
from tensorgrad import kernels


class On(emulation.Place):
    sources = (fused._UPDATES,)

    def same(self, kernel: str, case: str, got, want) -> None:
        got, want = self.host(got), self.host(want)
        assert (got.shape, got.dtype) == (want.shape, want.dtype)
        if not self.emulated:
            finite = np.isfinite(want)
            diff = np.abs(got[finite].astype(np.float64) - want[finite]).max(initial=0.0)
            kernels.report_difference(kernel, case, float(diff))
        np.testing.assert_array_equal(got, want)


@pytest.fixture(scope="module", params=emulation.PLACES)
def on(request) -> On:
    return On(request.param)


# ------------------------------------------------------------------ drawing the cases

DTYPES = st.sampled_from([np.float32, np.float64])
SHAPES = st.sampled_from([(), (1,), (7,), (3, 5), (2, 3, 4), (0, 3)])  # 0-d, odd, empty
RATES = st.floats(1e-4, 1.0)
FRACTIONS = st.one_of(st.just(0.0), st.floats(0.01, 0.99))  # 0 switches a term off
DECAY = st.one_of(st.just(0), st.floats(1e-4, 0.5))


@st.composite
def sgd_cases(draw):
    momentum, dampening = draw(FRACTIONS), draw(FRACTIONS)
    nesterov = momentum > 0 and dampening == 0 and draw(st.booleans())
    return nn.optim.SGD, dict(lr=draw(RATES), momentum=momentum, dampening=dampening,
                              weight_decay=draw(DECAY), nesterov=nesterov,
                              maximize=draw(st.booleans()))


@st.composite
def rmsprop_cases(draw):
    return nn.optim.RMSprop, dict(lr=draw(RATES), alpha=draw(st.floats(0.5, 0.999)),
                                  eps=draw(st.sampled_from([1e-8, 1e-3, 0.0])),
                                  weight_decay=draw(DECAY), momentum=draw(FRACTIONS),
                                  centered=draw(st.booleans()), maximize=draw(st.booleans()))


@st.composite
def adam_cases(draw):
    kind = draw(st.sampled_from([nn.optim.Adam, nn.optim.AdamW]))
    betas = (draw(FRACTIONS), draw(st.floats(0.5, 0.9999)))
    return kind, dict(lr=draw(RATES), betas=betas, eps=draw(st.sampled_from([1e-8, 1e-3])),
                      weight_decay=draw(DECAY), amsgrad=draw(st.booleans()),
                      maximize=draw(st.booleans()))


def _run(on, kind, hyper, shape, dtype, seed, steps):
    """Step a fresh ``kind`` optimizer ``steps`` times on two parameters of ``shape``
    (gradients drawn from ``seed``; the second's is a transposed, non-contiguous view
    when it has two axes). Returns the parameters, every state buffer, and the versions."""
    rng = np.random.default_rng(seed)
    params = [tg.tensor(rng.standard_normal(shape).astype(dtype), device=on.device,
                        requires_grad=True) for _ in range(2)]
    opt = kind(params, **hyper)
    for _ in range(steps):
        for i, p in enumerate(params):
            g = rng.standard_normal(shape[::-1] if i and len(shape) == 2 else shape)
            g = tg.tensor(g.astype(dtype), device=on.device)
            p.grad = g.T if i and len(shape) == 2 else g
        opt.step()
    arrays = {f"param{i}": p.data for i, p in enumerate(params)}
    for i, p in enumerate(params):
        arrays.update({f"{name}{i}": v.data for name, v in opt.state[p].items()
                       if isinstance(v, tg.Tensor)})
    return arrays, [p._version for p in params]


def _check(on, case, shape, dtype, seed, steps, kernel):
    kind, hyper = case
    with on.kernels() as launched:
        got, got_versions = _run(on, kind, hyper, shape, dtype, seed, steps)
    with kernels.disabled():
        want, want_versions = _run(on, kind, hyper, shape, dtype, seed, steps)
    name = f"{kernel}_{kernels.FLOAT_SUFFIX[np.dtype(dtype)]}"
    assert launched == [name] * (2 * steps)  # every parameter, every step: one launch
    assert sorted(got) == sorted(want)  # the same state entries
    assert got_versions == want_versions == [steps, steps]
    for key in want:
        on.same(name, f"{kind.__name__} {hyper} {shape} {key}", got[key], want[key])


STEPS = st.integers(1, 3)
SEEDS = st.integers(0, 2**16)


@given(case=sgd_cases(), shape=SHAPES, dtype=DTYPES, seed=SEEDS, steps=STEPS)
def test_sgd_kernel_matches_generic(on, case, shape, dtype, seed, steps):
    _check(on, case, shape, dtype, seed, steps, "sgd")


@given(case=rmsprop_cases(), shape=SHAPES, dtype=DTYPES, seed=SEEDS, steps=STEPS)
def test_rmsprop_kernel_matches_generic(on, case, shape, dtype, seed, steps):
    _check(on, case, shape, dtype, seed, steps, "rmsprop")


@given(case=adam_cases(), shape=SHAPES, dtype=DTYPES, seed=SEEDS, steps=STEPS)
def test_adam_kernel_matches_generic(on, case, shape, dtype, seed, steps):
    _check(on, case, shape, dtype, seed, steps, "adam")


def test_state_added_after_the_first_step_matches_generic(on):
    """Momentum (SGD, RMSprop), centered and amsgrad switched on between steps: the new
    buffers start as the generic path starts them."""
    changes = [(nn.optim.SGD, dict(lr=0.1), dict(momentum=0.9)),
               (nn.optim.RMSprop, dict(lr=0.1), dict(momentum=0.5, centered=True)),
               (nn.optim.Adam, dict(lr=0.1), dict(amsgrad=True))]
    for kind, hyper, later in changes:
        results = []
        for context in (on.kernels(), kernels.disabled()):
            with context as launched:
                p = tg.tensor(np.linspace(-1, 1, 5, dtype=np.float32), device=on.device,
                              requires_grad=True)
                opt = kind([p], **hyper)
                for step in range(3):
                    p.grad = tg.tensor(np.float32(step + 1) * np.arange(5, dtype=np.float32)
                                       - 2, device=on.device)
                    opt.step()
                    opt.param_groups[0].update(later)
            results.append((launched, p.data, {k: v.data for k, v in opt.state[p].items()
                                               if isinstance(v, tg.Tensor)}))
        (launched, got, got_state), (_, want, want_state) = results
        assert len(launched) == 3
        assert sorted(got_state) == sorted(want_state)
        on.same(kind.__name__, f"{later}", got, want)
        for key in want_state:
            on.same(kind.__name__, f"{later} {key}", got_state[key], want_state[key])


# ------------------------------------------------------------------ dispatch


def _launched_by(opt, p) -> list[str]:
    p.grad = tg.ones_like(p)
    with emulation.active(fused._UPDATES), emulation.recording() as launched:
        opt.step()
    return launched


@pytest.mark.cpu_only
def test_unsupported_cases_take_the_generic_path():
    emulation.require()
    # a non-contiguous parameter (updated in place, so it cannot be copied first)
    base = tg.tensor(np.ones((4, 6), np.float32), requires_grad=True)
    strided = tg.tensor(np.ones((6, 4), np.float32).T, requires_grad=True)
    assert not strided.data.flags.c_contiguous
    assert _launched_by(nn.optim.SGD([strided], lr=0.1), strided) == []
    assert _launched_by(nn.optim.SGD([base], lr=0.1), base) == ["sgd_f32"]
    # a NumPy scalar hyperparameter: the generic path would compute in its precision
    assert _launched_by(nn.optim.Adam([base], lr=np.float64(0.1)), base) == []
    # a float16 parameter: no kernel for it
    whole = tg.tensor(np.ones(3, np.float16), requires_grad=True)
    assert _launched_by(nn.optim.SGD([whole], lr=0.5), whole) == []
    np.testing.assert_array_equal(whole.data, np.full(3, 0.5, np.float16))


@pytest.mark.cpu_only
def test_kernels_are_off_by_default():
    p = tg.tensor(np.ones(3, np.float32), requires_grad=True)
    p.grad = tg.ones_like(p)
    with emulation.recording() as launched:  # NumPy arrays, no emulation: no kernel
        nn.optim.Adam([p]).step()
    assert launched == []
    assert kernels.use_kernel(p.data) is False


# ------------------------------------------------------------------ argument types


@pytest.mark.cpu_only
def test_scalar_arguments_have_the_c_types_of_the_signature(monkeypatch):
    """The launches pass np.float32 (f32 entry points) or np.float64 (f64) for the C
    float/double parameters, np.int64 for ``total`` and np.int32 for the int flags: a
    Python float would be passed with the wrong width. ``check_arguments`` refuses the
    wrong ones."""
    calls = []
    monkeypatch.setattr(kernels, "launch", lambda source, name, threads, args:
                        calls.append((name, args)))
    for dtype, real in ((np.float32, np.float32), (np.float64, np.float64)):
        p = tg.tensor(np.ones(4, dtype), requires_grad=True)
        state: dict = {}
        group = nn.optim.SGD([p], lr=0.1, momentum=0.9).param_groups[0]
        fused.sgd(p.data, np.ones(4, dtype), state, group)
        name, args = calls[-1]
        assert name == f"sgd_{kernels.FLOAT_SUFFIX[np.dtype(dtype)]}"
        scalars = [type(a) for a in args[5:]]
        assert scalars == [np.int64] + [real] * 4 + [np.int32] * 5
        kernels.check_arguments(fused._UPDATES, name, args)  # the real check accepts them
        wrong = list(args)
        wrong[6] = 0.1  # lr as a Python float
        with pytest.raises(TypeError, match="lr"):
            kernels.check_arguments(fused._UPDATES, name, tuple(wrong))
        wrong[6] = (np.float64 if dtype == np.float32 else np.float32)(0.1)
        with pytest.raises(TypeError, match="lr"):
            kernels.check_arguments(fused._UPDATES, name, tuple(wrong))
        wrong = list(args)
        wrong[-1] = 1  # a flag as a Python int
        with pytest.raises(TypeError, match="nesterov"):
            kernels.check_arguments(fused._UPDATES, name, tuple(wrong))


@pytest.mark.cpu_only
def test_the_source_is_registered_for_the_compile_check():
    assert kernels.SOURCES["optim"] is fused._UPDATES
    assert fused._UPDATES.declared_in == "nn.optim.fused"
    assert "--fmad=false" in fused._UPDATES.options  # no contraction: bit for bit


def _ptx(code: str, options: tuple[str, ...]) -> str:
    """The PTX NVRTC makes of ``code`` for compute_80, with the options of a real launch."""
    from cupy_backends.cuda.libs import nvrtc

    program = nvrtc.createProgram(code, "optim.cu", [], [])
    try:
        nvrtc.compileProgram(program, [o.replace("-arch=sm_", "-arch=compute_")
                                       for o in kernels.compile_options("sm_80", options)])
        return nvrtc.getPTX(program).decode()
    finally:
        nvrtc.destroyProgram(program)


@pytest.mark.cpu_only
def test_no_multiply_add_is_fused_on_a_gpu():
    """With --fmad=false NVRTC emits no fused multiply-add (rounded once), so each product
    is rounded before its sum, as in the generic path, whose every operation is a CuPy
    kernel of its own. Without the option it would fuse them: the check can fail."""
    source = fused._UPDATES
    assert "fma.rn" not in _ptx(source.code, source.options)
    assert "fma.rn" in _ptx(source.code, ())
