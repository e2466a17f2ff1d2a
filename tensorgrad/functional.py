"""``tg.functional`` (import as ``F``): the stateless layer functions.

Each is a thin wrapper that validates its arguments and calls the op's Function.
"""

from __future__ import annotations

from .ops.dropout import dropout
from .ops.elementwise import relu, sigmoid, tanh
from .ops.matmul import linear
from .ops.reduce import log_softmax, softmax

__all__ = [
    "dropout",
    "linear",
    "log_softmax",
    "relu",
    "sigmoid",
    "softmax",
    "tanh",
]
