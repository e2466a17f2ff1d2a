"""tensorgrad: a reverse-mode autograd engine on NumPy (CPU) and CuPy (GPU).

    import tensorgrad as tg
    x = tg.randn(3, 4, requires_grad=True)
    (x * x).sum().backward()      # x.grad == 2x
"""

from . import backends, cuda, data, distributed, functional, host_memory, profiler, viz
from .anomaly import detect_anomaly
from .autograd import Context, Function, enable_grad, is_grad_enabled, no_grad
from .autograd.grad_mode import inference_mode, set_grad_enabled
from .backend import Device, device, get_array_module, get_rng_state, manual_seed, set_rng_state
from .gradcheck import GradcheckError, gradcheck, gradgradcheck
from .ops import (  # PyTorch's module-level spellings of the Tensor methods
    abs,
    all,
    amax,
    amin,
    any,
    argmax,
    argmin,
    argsort,
    cat,
    chunk,
    clamp,
    cumsum,
    exp,
    flatten,
    flip,
    gather,
    log,
    log_softmax,
    logsumexp,
    masked_fill,
    matmul,
    max,
    maximum,
    mean,
    min,
    minimum,
    permute,
    relu,
    reshape,
    scatter,
    scatter_add,
    sigmoid,
    softmax,
    sort,
    split,
    sqrt,
    squeeze,
    stack,
    std,
    sum,
    tanh,
    topk,
    transpose,
    unsqueeze,
    var,
    where,
)
from .ops.reduce import norm  # (tensorgrad.ops.norm is the normalization module)
from .serialization import load, save
from .tensor import (
    Tensor,
    arange,
    bool_,
    empty,
    eye,
    float16,
    float32,
    float64,
    from_numpy,
    full,
    full_like,
    int32,
    int64,
    is_tensor,
    linspace,
    numel,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randn,
    randn_like,
    randperm,
    tensor,
    zeros,
    zeros_like,
)

bool = bool_  # noqa: A001 - tg.bool, as torch.bool
# PyTorch's other dtype names (tg.long is int64, tg.float float32 ...)
long, int, float, double, half = int64, int32, float32, float64, float16  # noqa: A001


def square(x: Tensor) -> Tensor:
    return x.square()


def __getattr__(name: str):
    # tg.testing needs hypothesis, a dev dependency: import it only when asked for.
    if name == "testing":
        import importlib

        return importlib.import_module(".testing", __name__)
    raise AttributeError(f"module 'tensorgrad' has no attribute {name!r}")


__all__ = [
    "Context", "Device", "Function", "GradcheckError", "Tensor", "arange", "backends", "bool",
    "cat",
    "detect_anomaly", "host_memory", "profiler", "viz",
    "data", "distributed", "load", "save",
    "cuda", "empty", "enable_grad", "float16", "float32", "float64", "from_numpy", "full",
    "functional", "get_array_module", "get_rng_state", "gradcheck", "gradgradcheck", "int32",
    "int64",
    "is_grad_enabled", "manual_seed", "maximum", "minimum", "no_grad", "ones", "ones_like",
    "rand", "randn", "randn_like", "set_rng_state", "stack", "tensor", "where", "zeros",
    "zeros_like",
    # PyTorch's module-level functions, dtype names and grad-mode spellings (tg.int and
    # tg.float are left out: a star import must not shadow the builtins int and float)
    "abs", "all", "amax", "amin", "any", "argmax", "argmin", "argsort", "chunk", "clamp",
    "cumsum", "device", "double", "exp", "eye", "flatten", "flip", "full_like",
    "gather", "half", "inference_mode", "is_tensor", "linspace", "log", "log_softmax",
    "logsumexp", "long", "masked_fill", "matmul", "max", "mean", "min", "norm", "numel",
    "permute", "rand_like", "randint", "randperm", "relu", "reshape", "scatter",
    "scatter_add", "set_grad_enabled", "sigmoid", "softmax", "sort", "split", "sqrt",
    "square", "squeeze", "std", "sum", "tanh", "topk", "transpose", "unsqueeze", "var",
]
