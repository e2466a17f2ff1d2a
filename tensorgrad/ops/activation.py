r"""Activations beyond relu, sigmoid and tanh: leaky_relu, elu and gelu.

GELU is x·Φ(x), with Φ the standard normal CDF, Φ(x) = erfc(−x/√2)/2. NumPy has no
``erf`` (CuPy has one only in ``cupyx.scipy.special``), so ``erfc`` below evaluates
it with the rational approximations of fdlibm's ``s_erf.c`` (Sun Microsystems, 1993;
the code most C libraries' ``erf`` descends from), vectorised: every element goes
through each piece and ``where`` keeps the one for its range. Within 3 units in the
last place of float64 and of float32 (tests/test_activation.py checks it)::

    |x| < 0.84375          erfc(x) = 1 − (x + x·P(x²)/Q(x²))
    0.84375 ≤ |x| < 1.25   erfc(x) = 1 − erx − P(s)/Q(s),          s = |x| − 1
    1.25 ≤ |x|             erfc(x) = exp(−x² − 0.5625 + R(s)/S(s)) / x,   s = 1/x²

(erfc(−x) = 2 − erfc(x) for the negative half; erx is erf(1) rounded to float).
Computing Φ through erfc, not 1 + erf, keeps its relative accuracy in the left tail,
where 1 + erf(x) would cancel to nothing.

Second derivatives (``create_graph=True``): leaky_relu's and elu's backwards are traced
as they are (elu's reads its saved output: α·eˣ = z + α). Exact GELU is differentiated
through its definition x·Φ(x), with Φ a Function of its own (``NormalCDF``, whose
derivative φ is plain array code), and the tanh approximation through its formula as
tensor ops: their fused backwards keep Φ and tanh u as private intermediates.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from ..autograd import Function
from ..backend import get_array_module
from ..tensor import Tensor

# ------------------------------------------------------------------ erfc

_ERX = 8.45062911510467529297e-01  # erf(1) rounded to float precision
# erf(x) = x + x·P(x²)/Q(x²) on |x| < 0.84375
_PP = (1.28379167095512558561e-01, -3.25042107247001499370e-01, -2.84817495755985104766e-02,
       -5.77027029648944159157e-03, -2.37630166566501626084e-05)
_QQ = (1.0, 3.97917223959155352819e-01, 6.50222499887672944485e-02,
       5.08130628187576562776e-03, 1.32494738004321644526e-04, -3.96022827877536812320e-06)
# erf(1 + s) = erx + P(s)/Q(s) on 0.84375 ≤ |x| < 1.25
_PA = (-2.36211856075265944077e-03, 4.14856118683748331666e-01, -3.72207876035701323847e-01,
       3.18346619901161753674e-01, -1.10894694282396677476e-01, 3.54783043256182359371e-02,
       -2.16637559486879084300e-03)
_QA = (1.0, 1.06420880400844228286e-01, 5.40397917702171048937e-01, 7.18286544141962662868e-02,
       1.26171219808761642112e-01, 1.36370839120290507362e-02, 1.19844998467991074170e-02)
# x·exp(x² + 0.5625)·erfc(x) = exp(R(1/x²)/S(1/x²)) on 1.25 ≤ |x| < 1/0.35 ...
_RA = (-9.86494403484714822705e-03, -6.93858572707181764372e-01, -1.05586262253232909814e+01,
       -6.23753324503260060396e+01, -1.62396669462573470355e+02, -1.84605092906711035994e+02,
       -8.12874355063065934246e+01, -9.81432934416914548592e+00)
_SA = (1.0, 1.96512716674392571292e+01, 1.37657754143519042600e+02, 4.34565877475229228821e+02,
       6.45387271733267880336e+02, 4.29008140027567833386e+02, 1.08635005541779435134e+02,
       6.57024977031928170135e+00, -6.04244152148580987438e-02)
# ... and on |x| ≥ 1/0.35
_RB = (-9.86494292470009928597e-03, -7.99283237680523006574e-01, -1.77579549177547519889e+01,
       -1.60636384855821916062e+02, -6.37566443368389627722e+02, -1.02509513161107724954e+03,
       -4.83519191608651397019e+02)
_SB = (1.0, 3.03380607434824582924e+01, 3.25792512996573918826e+02, 1.53672958608443695994e+03,
       3.19985821950859553908e+03, 2.55305040643316442583e+03, 4.74528541206955367215e+02,
       -2.24409524465858183362e+01)
# beyond 28, erfc underflows even float64's subnormals
_ERFC_ZERO_FROM = 28.0

# the mantissa bits kept in x's "high part" hi (float64: 20 of 52; float32: 10 of 23):
# few enough that hi·hi, and hi·hi + 0.5625, are exact in the working precision
_HIGH_BITS = {np.dtype(np.float64): (np.uint64, 0xFFFFFFFF00000000),
              np.dtype(np.float32): (np.uint32, 0xFFFFE000)}


def _poly(coeffs: tuple, z):
    """c0 + c1·z + c2·z² + ... by Horner's rule."""
    result = coeffs[-1]
    for c in coeffs[-2::-1]:
        result = result * z + c
    return result


def _high_part(b):
    """``b`` with its low mantissa bits cleared: few enough bits that b·b is exact."""
    uint, mask = _HIGH_BITS[b.dtype]
    return (b.view(uint) & uint(mask)).view(b.dtype)


def erfc(x):
    """The complementary error function of a float array, in its own dtype (float16
    is evaluated in float32). Vectorised fdlibm (module docstring)."""
    if x.dtype == np.float16:
        return erfc(x.astype(np.float32)).astype(np.float16)
    xp = get_array_module(x)
    a = xp.abs(x)
    # each piece sees its arguments clipped to its own range, so that the others'
    # elements raise no overflow warnings (NaN passes through clip and every piece)
    t = xp.clip(x, -0.84375, 0.84375)
    tz = t * t
    ty = t * (_poly(_PP, tz) / _poly(_QQ, tz))
    # fdlibm's split for 1/4 ≤ x: 1/2 − (x·y + (x − 1/2)) rounds better than 1 − x − x·y
    small = xp.where(t < 0.25, 1 - (t + ty), 0.5 - (ty + (t - 0.5)))

    s = xp.clip(a, 0.84375, 1.25) - 1
    pq = _poly(_PA, s) / _poly(_QA, s)
    middle = xp.where(x > 0, (1 - _ERX) - pq, 1 + (_ERX + pq))

    b = xp.clip(a, 1.25, _ERFC_ZERO_FROM)
    s = 1 / (b * b)
    rs = xp.where(b < 1 / 0.35, _poly(_RA, s) / _poly(_SA, s), _poly(_RB, s) / _poly(_SB, s))
    # exp(−b²) straight from a rounded b² would be off by ~b² ulps; with b = hi + lo and
    # hi·hi exact, exp(−b²) = exp(−hi²)·exp((hi − b)(hi + b)) loses nothing
    hi = _high_part(b)
    tail = xp.exp(-hi * hi - 0.5625) * xp.exp((hi - b) * (hi + b) + rs) / b
    large = xp.where(x > 0, tail, 2 - tail)
    return xp.where(a < 0.84375, small, xp.where(a < 1.25, middle, large))


# ------------------------------------------------------------------ activations

_SQRT1_2 = 1 / math.sqrt(2)
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)
_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)
_GELU_CUBIC = 0.044715  # the tanh approximation's x³ coefficient (Hendrycks & Gimpel)


class LeakyReLU(Function):
    """z = x where x > 0, else slope·x;  dz/dx = 1 where x > 0, else slope (also at
    0, as PyTorch)"""

    differentiable_backward = True

    @staticmethod
    def forward(ctx, x, *, slope):
        xp = get_array_module(x)
        positive = x > 0
        ctx.save_for_backward(positive)
        ctx.slope = slope
        return xp.where(positive, x, x * slope)

    @staticmethod
    def backward(ctx, g):
        (positive,) = ctx.saved_tensors
        return get_array_module(g).where(positive, g, g * ctx.slope)


class ELU(Function):
    """z = x where x > 0, else α(eˣ − 1);  dz/dx = 1 where x > 0, else α·eˣ (α at 0, as
    PyTorch)"""

    differentiable_backward = True

    @staticmethod
    def forward(ctx, x, *, alpha):
        xp = get_array_module(x)
        # expm1 keeps eˣ − 1 accurate near 0; min(x, 0) keeps exp from overflowing
        negative_part = xp.expm1(xp.minimum(x, 0)) * alpha
        z = xp.where(x > 0, x, negative_part)
        ctx.save_for_backward(x, z)
        ctx.alpha = alpha
        return z

    @staticmethod
    def backward(ctx, g):
        x, z = ctx.saved_tensors
        # α·eˣ = α(eˣ − 1) + α = z + α where x <= 0: the saved output, no second exp (and
        # under create_graph, z's own derivative gives the second derivative α·eˣ)
        return get_array_module(g).where(x > 0, g, g * (z + ctx.alpha))


def _normal_cdf(x):
    """Φ(x) = erfc(−x/√2)/2, the standard normal CDF."""
    cdf = erfc(x * -_SQRT1_2)
    cdf *= 0.5
    return cdf


def _normal_pdf(x):
    """φ(x) = e^(−x²/2)/√(2π), the standard normal density (Φ's derivative)."""
    return get_array_module(x).exp(x * x * -0.5) * _INV_SQRT_2PI


class NormalCDF(Function):
    """z = Φ(x);  dz/dx = φ(x). Exact GELU's ``composite`` builds on it."""

    differentiable_backward = True

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return _normal_cdf(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * _normal_pdf(x)


class GELU(Function):
    """z = x·Φ(x), Φ the standard normal CDF;  dz/dx = Φ(x) + x·φ(x), φ its density"""

    @staticmethod
    def forward(ctx, x):
        cdf = _normal_cdf(x)
        ctx.save_for_backward(x, cdf)
        return x * cdf

    @staticmethod
    def backward(ctx, g):
        x, cdf = ctx.saved_tensors
        return g * (cdf + x * _normal_pdf(x))

    @staticmethod
    def composite(x):
        """x·Φ(x) as tensor ops, for create_graph (backward keeps Φ(x) as a private array)."""
        return x * NormalCDF.apply(x)


class GELUTanh(Function):
    """z = x/2·(1 + tanh u),  u = √(2/π)·(x + 0.044715x³);
    dz/dx = (1 + tanh u)/2 + x/2·(1 − tanh²u)·√(2/π)·(1 + 3·0.044715x²)"""

    @staticmethod
    def forward(ctx, x):
        xp = get_array_module(x)
        t = xp.tanh((x + _GELU_CUBIC * x * x * x) * _SQRT_2_OVER_PI)
        ctx.save_for_backward(x, t)
        return 0.5 * x * (1 + t)

    @staticmethod
    def backward(ctx, g):
        x, t = ctx.saved_tensors
        du = (1 + 3 * _GELU_CUBIC * x * x) * _SQRT_2_OVER_PI
        return g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * du)

    @staticmethod
    def composite(x):
        """The formula as tensor ops, for create_graph (backward keeps tanh u private)."""
        u = (x + _GELU_CUBIC * x * x * x) * _SQRT_2_OVER_PI
        return 0.5 * x * (1 + u.tanh())


# ------------------------------------------------------------------ wrappers


def _check_float(op: str, x) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: input must be a Tensor, got {type(x).__name__}")
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: input must be floating point, got dtype {x.dtype}")


def _check_number(op: str, name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{op}: {name} must be a number, got {value!r}")
    return float(value)


def leaky_relu(input: Tensor, negative_slope: float = 0.01,  # noqa: A002
               inplace: bool = False) -> Tensor:
    """x where x > 0, else negative_slope·x. ``inplace`` is accepted for PyTorch
    compatibility; the result is always a new tensor."""
    slope = _check_number("leaky_relu", "negative_slope", negative_slope)
    _check_float("leaky_relu", input)
    return LeakyReLU.apply(input, slope=slope)


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:  # noqa: A002
    """x where x > 0, else alpha·(eˣ − 1). ``inplace`` is accepted and ignored."""
    alpha = _check_number("elu", "alpha", alpha)
    _check_float("elu", input)
    return ELU.apply(input, alpha=alpha)


GELU_APPROXIMATIONS = ("none", "tanh")


def gelu(input: Tensor, approximate: str = "none") -> Tensor:  # noqa: A002
    """x·Φ(x), the Gaussian error linear unit; ``approximate='tanh'`` uses
    x/2·(1 + tanh(√(2/π)(x + 0.044715x³))) instead, as PyTorch."""
    if approximate not in GELU_APPROXIMATIONS:
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    _check_float("gelu", input)
    return (GELU if approximate == "none" else GELUTanh).apply(input)
