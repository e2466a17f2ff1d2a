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
from .reduce import argmax, argmin, log_softmax, max, mean, min, softmax, std, sum, var
from .shape import cat, expand, flatten, permute, reshape, squeeze, stack, transpose, unsqueeze

__all__ = [
    "abs", "add", "argmax", "argmin", "cat", "clamp", "div", "exp", "expand", "flatten",
    "floor_divide", "remainder",
    "getitem", "linear", "log", "log_softmax", "matmul", "max", "maximum", "mean", "min",
    "minimum", "mul", "neg", "permute", "pow", "relu", "reshape", "sigmoid", "softmax",
    "sqrt", "squeeze", "stack", "std", "sub", "sum", "tanh", "transpose", "unsqueeze", "var",
    "where",
]
