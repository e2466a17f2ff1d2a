"""Add your own differentiable op: Swish (SiLU) as a ``tg.Function``, then check it.

The lecture (docs/lecture.md, "Components and Assignment 3") builds every CNN from a few
components: convolution, pooling, fully-connected layers, activation functions and
normalization. In tensorgrad each of them is a ``tg.Function`` — a forward and a
backward on raw NumPy/CuPy arrays. This script writes one more activation in that
pattern, Swish / SiLU (Ramachandran et al. 2017; Elfwing et al. 2018),

    y = x · σ(x),        dy/dx = σ(x) + x · σ(x) · (1 − σ(x)) = σ(x) · (1 + x · (1 − σ(x))),

and checks it the way tensorgrad checks its own ops:

1. ``tg.gradcheck``: backward against central finite differences, in float64;
2. the same check on a deliberately broken backward, which must fail;
3. second derivatives, for ``create_graph=True`` (gradient penalties, Hessian-vector
   products, MAML: see examples/higher_order.py). A user Function can take either way:

   - ``Swish`` saves σ(x), an intermediate that is neither its input nor its output, so
     its backward cannot be recorded; it is marked ``@tg.autograd.once_differentiable``:
     its first derivative works under create_graph, differentiating that raises;
   - ``SmoothSwish`` saves only x and recomputes σ(x) in backward with an ``xp``
     function, so with ``differentiable_backward = True`` the same formula runs on
     traced arrays that record a graph; ``tg.gradgradcheck`` checks its second
     derivative σ(x)(1 − σ(x))(2 + x(1 − 2σ(x))) against finite differences;
4. property tests, run here with hypothesis' ``@given`` over ``tg.testing`` strategies:
   for any drawn shape and values, gradcheck passes (alone and in a broadcasting
   expression), gradgradcheck passes for ``SmoothSwish``, the op agrees with the
   composite ``x * x.sigmoid()`` in value and gradient, float32 stays float32 and
   finite even for huge inputs, and Swish never goes below its minimum −0.2785 (at
   x ≈ −1.2785).

    python examples/custom_op.py                  # prints one line per check
    python examples/custom_op.py --examples 100   # more hypothesis examples per property
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a plain checkout

import tensorgrad as tg  # noqa: E402
import tensorgrad.testing as tgt  # noqa: E402

SWISH_MIN = -0.27846454276107380  # swish(x*) where x* solves 1 + x(1 − σ(x)) = 0


def _sigmoid(x):
    """σ(x) without overflow: exp of a non-positive number only."""
    xp = tg.get_array_module(x)
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _smooth_sigmoid(x):
    """σ(x) = (1 + tanh(x/2)) / 2: no overflow either, and smooth as *code*. A backward
    that create_graph records is differentiated as written, and ``_sigmoid``'s |x| has
    a kink at 0 (abs′(0) = 0), so the derivative of that code at x = 0 would lose the
    σ′(0) = 1/4 that the value's two branches meet with: right values, wrong second
    derivative at one point (a property test finds it). Its cost: tiny σ(x) for
    x ≲ −37 round to 0, which a gradient (an absolute quantity) does not notice."""
    return (1 + tg.get_array_module(x).tanh(x / 2)) / 2


def _swish_grad(gy, x, s):
    """dL/dx = dL/dy · (σ(x) + x · σ(x) · (1 − σ(x)))."""
    return gy * s * (1 + x * (1 - s))


class Swish(tg.Function):
    """y = x · σ(x). First-order only: see ``SmoothSwish`` for the twice-differentiable
    version."""

    @staticmethod
    def forward(ctx, x):
        s = _sigmoid(x)
        ctx.save_for_backward(x, s)  # σ(x) is reused by backward instead of recomputed
        return x * s

    @staticmethod
    @tg.autograd.once_differentiable  # σ(x) is a private intermediate: no graph reaches it
    def backward(ctx, gy):
        x, s = ctx.saved_tensors
        return _swish_grad(gy, x, s)


class SmoothSwish(tg.Function):
    """y = x · σ(x), with a backward that create_graph can differentiate: it reads only
    the saved input and recomputes σ(x) with an ``xp`` function (tanh), which on traced
    arrays is a recorded tensor op."""

    differentiable_backward = True

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * _smooth_sigmoid(x)

    @staticmethod
    def backward(ctx, gy):
        (x,) = ctx.saved_tensors
        return _swish_grad(gy, x, _smooth_sigmoid(x))


def swish(x: tg.Tensor) -> tg.Tensor:
    """Swish / SiLU activation, elementwise."""
    if not isinstance(x, tg.Tensor):
        raise TypeError(f"swish expects a Tensor, got {type(x).__name__}")
    if x.dtype.kind != "f":
        raise TypeError(f"swish expects a floating-point tensor, got dtype {x.dtype}")
    return Swish.apply(x)


def smooth_swish(x: tg.Tensor) -> tg.Tensor:
    """Swish, twice differentiable (``create_graph=True`` works through it)."""
    return SmoothSwish.apply(x)


def swish_second_derivative(x: np.ndarray) -> np.ndarray:
    """d²/dx² x·σ(x) = σ(x)(1 − σ(x))(2 + x(1 − 2σ(x))), the closed form."""
    s = 1 / (1 + np.exp(-x))
    return s * (1 - s) * (2 + x * (1 - 2 * s))


class BrokenSwish(Swish):
    """The classic mistake: differentiate x · σ(x) as if x were a constant."""

    @staticmethod
    def backward(ctx, gy):
        x, s = ctx.saved_tensors
        return gy * s


# ------------------------------------------------------------------ the checks


def check_gradcheck() -> str:
    tg.manual_seed(0)
    x = tg.randn(4, 5, dtype=tg.float64, requires_grad=True)
    tg.gradcheck(swish, [x])
    return f"gradcheck float64 shape {tuple(x.shape)}: passed"


def check_broken_is_caught() -> str:
    tg.manual_seed(0)
    x = tg.randn(4, 5, dtype=tg.float64, requires_grad=True)
    try:
        tg.gradcheck(BrokenSwish.apply, [x])
    except tg.GradcheckError as e:
        return f"broken backward caught: {str(e).splitlines()[0]}"
    raise AssertionError("gradcheck accepted a wrong backward")


def check_gradgradcheck() -> str:
    tg.manual_seed(0)
    x = tg.randn(4, 5, dtype=tg.float64, requires_grad=True)
    tg.gradgradcheck(smooth_swish, [x])
    (g,) = tg.autograd.grad(smooth_swish(x).sum(), x, create_graph=True)
    (h,) = tg.autograd.grad(g.sum(), x)  # elementwise op: the Hessian's diagonal
    err = float(np.max(np.abs(h.numpy() - swish_second_derivative(x.numpy()))))
    assert err < 1e-12, err
    return (f"gradgradcheck SmoothSwish (differentiable_backward) float64 shape "
            f"{tuple(x.shape)}: passed, d2y/dx2 vs closed form max error {err:.1e}")


def check_once_differentiable() -> str:
    tg.manual_seed(0)
    x = tg.randn(4, 5, dtype=tg.float64, requires_grad=True)
    (g,) = tg.autograd.grad(swish(x).sum(), x, create_graph=True)
    s = 1 / (1 + np.exp(-x.numpy()))
    err = float(np.max(np.abs(g.numpy() - s * (1 + x.numpy() * (1 - s)))))
    assert err < 1e-12, err
    try:
        g.sum().backward()
    except RuntimeError as e:
        return (f"once_differentiable Swish: first derivative under create_graph max "
                f"error {err:.1e}; second derivative raises: {e}")
    raise AssertionError("a second derivative through a once_differentiable backward "
                         "did not raise")


def property_checks(examples: int) -> list[tuple[str, object]]:
    """The properties, as hypothesis tests; each records what it measured in ``stats``."""
    run = settings(max_examples=examples, deadline=None, database=None)
    float64 = tgt.arrays(dtype=np.float64, shape=tgt.shapes(max_dims=3, max_side=5),
                         min_value=-8, max_value=8)

    stats = {"gradcheck": 0, "broadcast": 0, "gradgradcheck": 0, "composite": 0, "float32": 0,
             "minimum": 0, "value_err": 0.0, "grad_err": 0.0, "lowest": np.inf}

    @run
    @given(x=tgt.tensors(tgt.shapes(max_dims=3, max_side=5), np.float64, requires_grad=True,
                         min_value=-8, max_value=8))
    def gradients_match_finite_differences(x):
        tg.gradcheck(swish, [x])
        stats["gradcheck"] += 1

    @run
    @given(data=st.data(), shapes=tgt.broadcastable_shapes(n=2, max_dims=3))
    def gradients_match_inside_a_broadcasting_expression(data, shapes):
        tgt.check_gradients(lambda x, y: swish(x) * y, data, shapes)
        stats["broadcast"] += 1

    @run
    @given(x=tgt.tensors(tgt.shapes(max_dims=3, max_side=4), np.float64, requires_grad=True,
                         min_value=-8, max_value=8))
    def second_derivatives_match_finite_differences(x):
        tg.gradgradcheck(smooth_swish, [x])
        stats["gradgradcheck"] += 1

    @run
    @given(a=float64)
    def agrees_with_composite(a):
        x1, x2 = tg.tensor(a, requires_grad=True), tg.tensor(a, requires_grad=True)
        y1, y2 = swish(x1), x2 * x2.sigmoid()
        y1.sum().backward()
        y2.sum().backward()
        value_err = float(np.max(np.abs(y1.numpy() - y2.numpy()), initial=0))
        grad_err = float(np.max(np.abs(x1.grad.numpy() - x2.grad.numpy()), initial=0))
        assert value_err < 1e-12 and grad_err < 1e-12, (value_err, grad_err)
        stats["value_err"] = max(stats["value_err"], value_err)
        stats["grad_err"] = max(stats["grad_err"], grad_err)
        stats["composite"] += 1

    @run
    @given(a=tgt.arrays(dtype=np.float32, shape=tgt.shapes(max_dims=3, max_side=5),
                        min_value=-1e4, max_value=1e4))
    def float32_stays_float32_and_finite(a):
        x = tg.tensor(a, requires_grad=True)
        y = swish(x)
        y.sum().backward()
        assert y.dtype == np.float32 and x.grad.dtype == np.float32
        assert np.isfinite(y.numpy()).all() and np.isfinite(x.grad.numpy()).all()
        stats["float32"] += 1

    @run
    @given(a=float64)
    def never_below_minimum(a):
        y = swish(tg.tensor(a)).numpy()
        assert (y >= SWISH_MIN - 1e-12).all()
        stats["lowest"] = min(stats["lowest"], float(y.min(initial=np.inf)))
        stats["minimum"] += 1

    return [
        (gradients_match_finite_differences,
         lambda: f"property gradcheck over drawn shapes: {stats['gradcheck']} examples passed"),
        (gradients_match_inside_a_broadcasting_expression,
         lambda: f"property gradcheck of swish(x) * y, broadcast shapes: {stats['broadcast']} "
                 "examples passed"),
        (second_derivatives_match_finite_differences,
         lambda: f"property gradgradcheck of SmoothSwish over drawn shapes: "
                 f"{stats['gradgradcheck']} examples passed"),
        (agrees_with_composite,
         lambda: f"property equals x * sigmoid(x): {stats['composite']} examples passed, "
                 f"max value error {stats['value_err']:.3e}, "
                 f"max gradient error {stats['grad_err']:.3e}"),
        (float32_stays_float32_and_finite,
         lambda: f"property float32 in, float32 out, finite: {stats['float32']} examples "
                 "passed"),
        (never_below_minimum,
         lambda: f"property swish >= {SWISH_MIN:.4f}: {stats['minimum']} examples passed, "
                 f"lowest value seen {stats['lowest']:.4f}"),
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], prog="custom_op.py")
    p.add_argument("--examples", type=int, default=50,
                   help="hypothesis examples per property (default 50)")
    args = p.parse_args(argv)

    failures = 0
    checks = [(check, None) for check in (check_gradcheck, check_broken_is_caught,
                                          check_gradgradcheck, check_once_differentiable)]
    checks += property_checks(args.examples)
    for check, report in checks:
        try:
            line = check()
            print(report() if report is not None else line)
        except Exception as e:  # noqa: BLE001 - report every failing check, then exit 1
            failures += 1
            print(f"FAILED {check.__name__}: {type(e).__name__}: {e}")
    print("all checks passed" if failures == 0 else f"{failures} check(s) failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
