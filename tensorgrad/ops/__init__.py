"""The built-in differentiable ops, one family per file; each op a ``Function``."""

from .elementwise import (
    abs,
    add,
    clamp,
    div,
    exp,
    floor_divide,
    log,
    maximum,
    minimum,
    mul,
    neg,
    pow,
    relu,
    remainder,
    sigmoid,
    sqrt,
    sub,
    tanh,
    where,
)
from .indexing import getitem
from .matmul import linear, matmul
from .rearrange import chunk, flip, repeat, split
from .reduce import (
    all,
    amax,
    amin,
    any,
    argmax,
    argmin,
    cumsum,
    log_softmax,
    logsumexp,
    max,
    mean,
    min,
    softmax,
    std,
    sum,
    var,
)
from .select import argsort, gather, masked_fill, scatter, scatter_add, sort, topk
from .shape import cat, expand, flatten, permute, reshape, squeeze, stack, transpose, unsqueeze

__all__ = [
    "abs", "add", "argmax", "argmin", "cat", "clamp", "div", "exp", "expand", "flatten",
    "floor_divide", "remainder",
    "getitem", "linear", "log", "log_softmax", "matmul", "max", "maximum", "mean", "min",
    "minimum", "mul", "neg", "permute", "pow", "relu", "reshape", "sigmoid", "softmax",
    "sqrt", "squeeze", "stack", "std", "sub", "sum", "tanh", "transpose", "unsqueeze", "var",
    "where",
    # selection, rearrangement and the other reductions
    "all", "amax", "amin", "any", "argsort", "chunk", "cumsum", "flip", "gather",
    "logsumexp", "masked_fill", "repeat", "scatter", "scatter_add", "sort", "split",
    "topk",
]
