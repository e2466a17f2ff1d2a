"""Weight initialisation, as ``torch.nn.init``: each function fills ``tensor.data``
in place (no graph is recorded) from the tensorgrad generator of the tensor's
device, so ``tg.manual_seed`` makes a model reproducible, and returns the tensor.

The scaled schemes keep the variance of activations constant through depth:

- Kaiming/He (2015): std = gain / √fan, fan = fan_in (forward) or fan_out (backward);
  the uniform variant draws from U(−b, b) with b = √3 · std.
- Xavier/Glorot (2010): std = gain · √(2 / (fan_in + fan_out)), uniform b = √3 · std.

For a weight of shape (out, in, k_h, k_w): fan_in = in·k_h·k_w, fan_out = out·k_h·k_w.
"""

from __future__ import annotations

import math

from tensorgrad import backend, no_grad
from tensorgrad.tensor import Tensor

_LINEAR_LIKE = {"linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
                "conv_transpose2d", "conv_transpose3d", "sigmoid"}


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for a nonlinearity (PyTorch's table): 1 for linear layers
    and sigmoid, 5/3 for tanh, √2 for relu, √(2 / (1 + slope²)) for leaky_relu
    (slope 0.01 unless given), 3/4 for selu."""
    if nonlinearity in _LINEAR_LIKE:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif not isinstance(param, bool) and isinstance(param, (int, float)):
            slope = param
        else:
            raise ValueError(f"negative_slope {param} not a valid number")
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"Unsupported nonlinearity {nonlinearity}")


def _calculate_fan_in_and_fan_out(tensor: Tensor) -> tuple[int, int]:
    if tensor.ndim < 2:
        raise ValueError("Fan in and fan out can not be computed for tensor with fewer than "
                         f"2 dimensions (got shape {tensor.shape})")
    receptive_field = math.prod(tensor.shape[2:])
    return tensor.shape[1] * receptive_field, tensor.shape[0] * receptive_field


def _calculate_correct_fan(tensor: Tensor, mode: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Mode {mode} not supported, please use one of fan_in, fan_out")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def _check(tensor: Tensor, name: str) -> None:
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{name} expects a Tensor, got {type(tensor).__name__}")
    if tensor.dtype.kind != "f":
        raise TypeError(f"{name} fills floating-point tensors, got dtype {tensor.dtype}")


def _draw(tensor: Tensor, kind: str):
    """Standard normal or U[0, 1) samples of the tensor's shape, dtype and device."""
    gen = backend.generator(tensor.device)
    # generators draw float32/float64; float16 is drawn in float32 and cast
    dtype = tensor.dtype if tensor.dtype.itemsize >= 4 else "float32"
    if kind == "normal":
        sample = gen.standard_normal(tensor.shape, dtype=dtype)
    else:
        sample = gen.random(tensor.shape, dtype=dtype)
    return sample


@no_grad()
def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0) -> Tensor:
    """Fill with samples of U(a, b)."""
    _check(tensor, "uniform_")
    if a > b:
        raise ValueError(f"uniform_ expects a <= b, got a={a}, b={b}")
    u = _draw(tensor, "uniform")
    u *= b - a  # in place: big layers (VGG's fc6 has 103 M weights) need no temporaries
    u += a
    tensor.data[...] = u
    tensor._bump_version()
    return tensor


@no_grad()
def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0) -> Tensor:
    """Fill with samples of N(mean, std²)."""
    _check(tensor, "normal_")
    if std < 0:
        raise ValueError(f"normal_ expects std >= 0, got {std}")
    z = _draw(tensor, "normal")
    z *= std
    z += mean
    tensor.data[...] = z
    tensor._bump_version()
    return tensor


@no_grad()
def constant_(tensor: Tensor, val: float) -> Tensor:
    _check(tensor, "constant_")
    tensor.data[...] = val
    tensor._bump_version()
    return tensor


def zeros_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 0.0)


def ones_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 1.0)


def xavier_uniform_(tensor: Tensor, gain: float = 1.0) -> Tensor:
    """U(−b, b) with b = gain · √(6 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound)


def xavier_normal_(tensor: Tensor, gain: float = 1.0) -> Tensor:
    """N(0, std²) with std = gain · √(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return normal_(tensor, 0.0, std)


def kaiming_uniform_(tensor: Tensor, a: float = 0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu") -> Tensor:
    """U(−b, b) with b = gain · √(3 / fan); ``a`` is the leaky-ReLU slope in the gain."""
    if 0 in tensor.shape:
        return tensor  # nothing to fill (PyTorch warns and returns)
    fan = _calculate_correct_fan(tensor, mode)
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound)


def kaiming_normal_(tensor: Tensor, a: float = 0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu") -> Tensor:
    """N(0, std²) with std = gain / √fan."""
    if 0 in tensor.shape:
        return tensor
    fan = _calculate_correct_fan(tensor, mode)
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
    return normal_(tensor, 0.0, std)


__all__ = [
    "calculate_gain", "constant_", "kaiming_normal_", "kaiming_uniform_", "normal_", "ones_",
    "uniform_", "xavier_normal_", "xavier_uniform_", "zeros_",
]
