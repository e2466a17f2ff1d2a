"""tensorgrad: a reverse-mode autograd engine on NumPy (CPU) and CuPy (GPU).

    import tensorgrad as tg
    x = tg.randn(3, 4, requires_grad=True)
    (x * x).sum().backward()      # x.grad == 2x
"""

from . import cuda, data, functional, host_memory, profiler, viz
from .anomaly import detect_anomaly
from .autograd import Context, Function, enable_grad, is_grad_enabled, no_grad
from .backend import Device, get_array_module, get_rng_state, manual_seed, set_rng_state
from .gradcheck import GradcheckError, gradcheck
from .ops import cat, maximum, minimum, stack, where
from .serialization import load, save
from .tensor import (
    Tensor,
    arange,
    bool_,
    empty,
    float16,
    float32,
    float64,
    from_numpy,
    full,
    int32,
    int64,
    ones,
    ones_like,
    rand,
    randn,
    randn_like,
    tensor,
    zeros,
    zeros_like,
)

bool = bool_  # noqa: A001 - tg.bool, as torch.bool



def __getattr__(name: str):
    # tg.testing needs hypothesis, a dev dependency: import it only when asked for.
    if name == "testing":
        import importlib

        return importlib.import_module(".testing", __name__)
    raise AttributeError(f"module 'tensorgrad' has no attribute {name!r}")


__all__ = [
    "Context", "Device", "Function", "GradcheckError", "Tensor", "arange", "bool", "cat",
    "detect_anomaly", "host_memory", "profiler", "viz",
    "data", "load", "save",
    "cuda", "empty", "enable_grad", "float16", "float32", "float64", "from_numpy", "full",
    "functional", "get_array_module", "get_rng_state", "gradcheck", "int32", "int64",
    "is_grad_enabled", "manual_seed", "maximum", "minimum", "no_grad", "ones", "ones_like",
    "rand", "randn", "randn_like", "set_rng_state", "stack", "tensor", "where", "zeros",
    "zeros_like",
]
