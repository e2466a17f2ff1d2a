"""Elementwise ops: arithmetic, the unary functions and their derivatives.

Every binary op broadcasts as NumPy does; its backward returns gradients of the
broadcast shape and ``Function.apply``'s engine sums them back (``unbroadcast``).
"""

from __future__ import annotations

import numbers

import numpy as np

from ..autograd import Function
from ..backend import get_array_module
from ..tensor import DEFAULT_FLOAT, Tensor, _is_float


class Add(Function):
    """z = x + y"""

    differentiable_backward = True

    @staticmethod
    def forward(ctx, x, y):
        return x + y

    @staticmethod
    def backward(ctx, g):
        return g, g


class Sub(Function):
    """z = x - y"""

    differentiable_backward = True

    @staticmethod
    def forward(ctx, x, y):
        return x - y

    @staticmethod
    def backward(ctx, g):
        return g, (-g if ctx.needs_input_grad[1] else None)


class Mul(Function):
    """z = x * y"""

    differentiable_backward = True

    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return x * y

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved_tensors
        gx = g * y if ctx.needs_input_grad[0] else None
        gy = g * x if ctx.needs_input_grad[1] else None
        return gx, gy


class Div(Function):
    """z = x / y;  dz/dx = 1/y,  dz/dy = -x/y²"""

    differentiable_backward = True

    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return x / y

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved_tensors
        gx = g / y if ctx.needs_input_grad[0] else None
        gy = -g * x / (y * y) if ctx.needs_input_grad[1] else None
        return gx, gy


class Pow(Function):
    """z = x ** y (both tensors);  dz/dx = y·x^(y-1),  dz/dy = z·log x"""

    differentiable_backward = True

    @staticmethod
    def forward(ctx, x, y):
        z = x**y
        ctx.save_for_backward(x, y, z)
        return z

    @staticmethod
    def backward(ctx, g):
        x, y, z = ctx.saved_tensors
        xp = get_array_module(g)
        gx = None
        if ctx.needs_input_grad[0]:
            # at x = y = 0 the derivative is 0, but y·x^(y-1) would be 0·inf = nan: a base
            # of 1 there (not an exponent of 1 wherever y = 0, which would give d/dy of this
            # gradient, x^(y-1), the wrong value x^0 at y = 0 under create_graph)
            x_safe = xp.where((x == 0) & (y == 0), xp.ones_like(x), x)
            gx = g * y * x_safe ** (y - 1)
        gy = None
        if ctx.needs_input_grad[1]:
            # log x is -inf at 0: z·log x is 0·(-inf) = nan for y > 0, where PyTorch
            # defines the gradient as 0 (and for y = 0); for y < 0 it is inf·(-inf)
            at_zero = x == 0
            log_x = xp.log(xp.where(at_zero, 1, x))  # 0 at x = 0: z·log x = 0 for y >= 0
            log_x = xp.where(at_zero & (y < 0), -xp.inf, log_x)  # z = ∞ there
            gy = g * z * log_x
        return gx, gy


class PowScalar(Function):
    """z = x ** p for a Python number p;  dz/dx = p·x^(p-1)"""

    differentiable_backward = True

    @staticmethod
    def forward(ctx, x, *, p):
        ctx.save_for_backward(x)
        ctx.p = p
        return x**p

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        if ctx.p == 0:  # x^0 is constant; p·x^(p-1) would be 0·inf = nan at x = 0
            return get_array_module(g).zeros_like(g)
        return g * (ctx.p * x ** (ctx.p - 1))


class Neg(Function):
    differentiable_backward = True

    @staticmethod
    def forward(ctx, x):
        return -x

    @staticmethod
    def backward(ctx, g):
        return -g


class Exp(Function):
    """dz/dx = exp(x) = z"""

    differentiable_backward = True

    @staticmethod
    def forward(ctx, x):
        z = get_array_module(x).exp(x)
        ctx.save_for_backward(z)
        return z

    @staticmethod
    def backward(ctx, g):
        (z,) = ctx.saved_tensors
        return g * z


class Log(Function):
    """dz/dx = 1/x"""

    differentiable_backward = True

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return get_array_module(x).log(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g / x


class Sqrt(Function):
    """dz/dx = 1 / (2·sqrt(x))"""

    differentiable_backward = True

    @staticmethod
    def forward(ctx, x):
        z = get_array_module(x).sqrt(x)
        ctx.save_for_backward(z)
        return z

    @staticmethod
    def backward(ctx, g):
        (z,) = ctx.saved_tensors
        return g / (2 * z)


class Abs(Function):
    """dz/dx = sign(x) (0 at 0, as PyTorch)"""

    differentiable_backward = True

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return get_array_module(x).abs(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * get_array_module(x).sign(x)


class Tanh(Function):
    """dz/dx = 1 - z²"""

    differentiable_backward = True

    @staticmethod
    def forward(ctx, x):
        z = get_array_module(x).tanh(x)
        ctx.save_for_backward(z)
        return z

    @staticmethod
    def backward(ctx, g):
        (z,) = ctx.saved_tensors
        return g * (1 - z * z)


class Sigmoid(Function):
    """z = 1 / (1 + e^-x);  dz/dx = z(1 - z)"""

    differentiable_backward = True

    @staticmethod
    def forward(ctx, x):
        xp = get_array_module(x)
        # split by sign so exp never overflows: for x<0 use e^x / (1 + e^x)
        e = xp.exp(-xp.abs(x))
        z = xp.where(x >= 0, 1 / (1 + e), e / (1 + e))
        ctx.save_for_backward(z)
        return z

    @staticmethod
    def backward(ctx, g):
        (z,) = ctx.saved_tensors
        return g * z * (1 - z)


class ReLU(Function):
    """z = max(x, 0);  dz/dx = 0 where z <= 0 (also at 0), else 1 — so a NaN passes its
    gradient on, as in PyTorch"""

    differentiable_backward = True

    @staticmethod
    def forward(ctx, x):
        z = get_array_module(x).maximum(x, 0)
        ctx.save_for_backward(z)
        return z

    @staticmethod
    def backward(ctx, g):
        (z,) = ctx.saved_tensors
        # where, not g·(z > 0): the same two passes, and a NaN (not <= 0) keeps its g
        return get_array_module(g).where(z <= 0, g.dtype.type(0), g)


class Clamp(Function):
    """z = min(max(x, lo), hi);  the gradient passes where lo <= x <= hi."""

    differentiable_backward = True

    @staticmethod
    def forward(ctx, x, *, lo, hi):
        xp = get_array_module(x)
        ctx.save_for_backward(x)
        ctx.lo, ctx.hi = lo, hi
        return xp.clip(x, lo, hi) if (lo is not None or hi is not None) else x.copy()

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        mask = True
        if ctx.lo is not None:
            mask = mask & (x >= ctx.lo)
        if ctx.hi is not None:
            mask = mask & (x <= ctx.hi)
        return g * mask


class Maximum(Function):
    """z = max(x, y) elementwise; at ties the gradient is split evenly (as PyTorch)."""

    differentiable_backward = True

    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return get_array_module(x).maximum(x, y)

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved_tensors
        return _split_at_ties(g, x > y, x == y)


class Minimum(Function):
    """z = min(x, y) elementwise; at ties the gradient is split evenly."""

    differentiable_backward = True

    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return get_array_module(x).minimum(x, y)

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved_tensors
        return _split_at_ties(g, x < y, x == y)


def _split_at_ties(g, x_wins, tie):
    wx = x_wins + 0.5 * tie
    wx = wx.astype(g.dtype)
    return g * wx, g * (1 - wx)


class Remainder(Function):
    """z = x - ⌊x/y⌋·y (the sign of y, as Python's % and PyTorch's remainder);
    dz/dx = 1,  dz/dy = -⌊x/y⌋"""

    differentiable_backward = True

    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return get_array_module(x).remainder(x, y)

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved_tensors
        gy = -g * get_array_module(g).floor_divide(x, y) if ctx.needs_input_grad[1] else None
        return g, gy


class Where(Function):
    """z = x where cond else y;  the gradient goes to the branch that was taken."""

    differentiable_backward = True

    @staticmethod
    def forward(ctx, cond, x, y):
        ctx.save_for_backward(cond)
        return get_array_module(x).where(cond, x, y)

    @staticmethod
    def backward(ctx, g):
        (cond,) = ctx.saved_tensors
        zero = g.dtype.type(0)
        xp = get_array_module(g)
        gx = xp.where(cond, g, zero) if ctx.needs_input_grad[1] else None
        gy = xp.where(cond, zero, g) if ctx.needs_input_grad[2] else None
        return None, gx, gy


# ------------------------------------------------------------ operand handling


def _result_dtype(a, b):
    """PyTorch's promotion: a float wins over ints/bools; floats promote as NumPy."""
    fa, fb = _is_float(a), _is_float(b)
    if fa and not fb:
        return np.dtype(a)
    if fb and not fa:
        return np.dtype(b)
    return np.promote_types(a, b)


def _python_scalar(value):
    """A NumPy scalar (np.float64(2.0), a float subclass that NumPy 2 would keep as
    float64) as the Python number it holds, so it never upcasts a tensor either."""
    return value.item() if isinstance(value, np.generic) else value


def _scalar_dtype(value, like):
    if isinstance(value, bool):
        return np.dtype(bool)
    if isinstance(value, numbers.Integral):
        return like if like.kind != "b" else np.dtype("int64")
    return like if _is_float(like) else DEFAULT_FLOAT


def as_tensor_pair(a, b) -> tuple[Tensor, Tensor]:
    """Turn ``a`` and ``b`` (Tensors, arrays or Python numbers) into tensors of one
    dtype; a Python number takes the tensor's dtype, so it never upcasts float32."""
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        raise TypeError(f"expected at least one Tensor, got {type(a).__name__} and "
                        f"{type(b).__name__}")
    ref = a if isinstance(a, Tensor) else b
    xp = get_array_module(ref.data)

    def wrap(v):
        if isinstance(v, Tensor):
            return v
        if isinstance(v, numbers.Number):
            return Tensor._make(xp.asarray(v, dtype=_scalar_dtype(v, ref.dtype)), None)
        if hasattr(v, "shape") and hasattr(v, "dtype"):
            return Tensor._make(v, None)
        raise TypeError(f"unsupported operand type {type(v).__name__} for a Tensor op")

    a, b = wrap(a), wrap(b)
    if a.dtype != b.dtype:
        if a.dtype.kind == b.dtype.kind and (a.ndim == 0) != (b.ndim == 0):
            # PyTorch's rule: within one kind a 0-d tensor acts like a scalar and takes
            # the other's dtype (float32 tensor + float64 0-d tensor stays float32)
            dtype = b.dtype if a.ndim == 0 else a.dtype
        else:
            dtype = _result_dtype(a.dtype, b.dtype)
        a, b = a.to(dtype=dtype), b.to(dtype=dtype)
    return a, b


def _check_broadcast(op: str, a: Tensor, b: Tensor) -> None:
    if a.shape != b.shape:
        try:
            np.broadcast_shapes(a.shape, b.shape)
        except ValueError:
            raise ValueError(
                f"{op}: shapes {a.shape} and {b.shape} cannot be broadcast together"
            ) from None


def _binary(fn: type[Function], name: str):
    def op(a, b) -> Tensor:
        a, b = as_tensor_pair(a, b)
        _check_broadcast(name, a, b)
        return fn.apply(a, b)

    op.__name__ = name
    op.__doc__ = fn.__doc__
    return op


add = _binary(Add, "add")
sub = _binary(Sub, "sub")
mul = _binary(Mul, "mul")
_div = _binary(Div, "div")


def div(a, b) -> Tensor:
    """a / b; true division of integer tensors gives float32, as PyTorch."""
    if not any(_is_float(v.dtype) if hasattr(v, "dtype") else isinstance(v, float)
               for v in (a, b)):  # (a float array or NumPy scalar keeps its own dtype)
        a, b = as_tensor_pair(a, b)
        a, b = a.to(dtype=DEFAULT_FLOAT), b.to(dtype=DEFAULT_FLOAT)
    return _div(a, b)
maximum = _binary(Maximum, "maximum")
minimum = _binary(Minimum, "minimum")


def pow(a, b) -> Tensor:  # noqa: A001 - mirrors the operator's name
    a, b = _python_scalar(a), _python_scalar(b)
    if isinstance(a, Tensor) and isinstance(b, numbers.Number) and not isinstance(b, bool):
        if not _is_float(a.dtype) and isinstance(b, float):
            a = a.to(dtype=DEFAULT_FLOAT)
        return PowScalar.apply(a, p=b)
    a, b = as_tensor_pair(a, b)
    _check_broadcast("pow", a, b)
    return Pow.apply(a, b)


def floor_divide(a, b) -> Tensor:
    """a // b, rounded towards -inf (as Python and PyTorch). Piecewise constant, so it
    records no graph (PyTorch raises if one backpropagates through it)."""
    a, b = as_tensor_pair(a, b)
    _check_broadcast("floor_divide", a, b)
    return Tensor._make(get_array_module(a.data).floor_divide(a.data, b.data), None)


def remainder(a, b) -> Tensor:
    """a % b, with the sign of b (Python's and PyTorch's convention)."""
    a, b = as_tensor_pair(a, b)
    _check_broadcast("remainder", a, b)
    return Remainder.apply(a, b)


def neg(x: Tensor) -> Tensor:
    return Neg.apply(x)


def _floating(x: Tensor) -> Tensor:
    """Integer and bool tensors become float32 before a float function (as PyTorch),
    rather than NumPy's float64."""
    return x if _is_float(x.dtype) else x.to(dtype=DEFAULT_FLOAT)


def exp(x: Tensor) -> Tensor:
    return Exp.apply(_floating(x))


def log(x: Tensor) -> Tensor:
    return Log.apply(_floating(x))


def sqrt(x: Tensor) -> Tensor:
    return Sqrt.apply(_floating(x))


def abs(x: Tensor) -> Tensor:  # noqa: A001
    return Abs.apply(x)


def tanh(x: Tensor) -> Tensor:
    return Tanh.apply(_floating(x))


def sigmoid(x: Tensor) -> Tensor:
    return Sigmoid.apply(_floating(x))


def relu(x: Tensor, inplace: bool = False) -> Tensor:
    """max(x, 0). ``inplace`` is accepted for PyTorch compatibility; the result is
    always a new tensor (autograd here never overwrites values backward needs)."""
    return ReLU.apply(x)


def clamp(x: Tensor, min=None, max=None) -> Tensor:  # noqa: A002
    """min(max(x, min), max), as PyTorch: with min > max every element becomes max."""
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must not be None")
    min, max = _python_scalar(min), _python_scalar(max)  # noqa: A001
    if isinstance(min, float) or isinstance(max, float):
        x = _floating(x)  # an integer tensor clamped to a float bound becomes float32
    return Clamp.apply(x, lo=min, hi=max)


def where(condition, x, y) -> Tensor:
    """Elements of ``x`` where ``condition`` holds, else of ``y`` (broadcasting)."""
    cond = condition.data if isinstance(condition, Tensor) else condition
    if not isinstance(x, Tensor) and not isinstance(y, Tensor):
        # two Python numbers: a tensor of their dtype (floats -> float32) on cond's device
        if not isinstance(x, numbers.Number) or not isinstance(y, numbers.Number):
            raise TypeError(f"where: x and y must be Tensors or numbers, got "
                            f"{type(x).__name__} and {type(y).__name__}")
        xp = get_array_module(cond)
        dtype = DEFAULT_FLOAT if isinstance(x, float) or isinstance(y, float) else None
        x = Tensor._make(xp.asarray(x, dtype=dtype or _scalar_dtype(x, np.dtype("int64"))),
                         None)
    x, y = as_tensor_pair(x, y)
    xp = get_array_module(x.data)
    cond = xp.asarray(cond)
    if cond.dtype != np.dtype(bool):
        raise TypeError(f"where: condition must be bool, got {cond.dtype}")
    try:
        np.broadcast_shapes(cond.shape, x.shape, y.shape)
    except ValueError:
        raise ValueError(
            f"where: condition {cond.shape}, x {x.shape} and y {y.shape} cannot be broadcast"
        ) from None
    return Where.apply(cond, x, y)
