"""``tg.functional`` (import as ``F``): the stateless layer functions.

Each is a thin wrapper that validates its arguments and calls the op's Function.
"""

from __future__ import annotations

from .ops.conv import conv2d
from .ops.dropout import dropout
from .ops.elementwise import relu, sigmoid, tanh
from .ops.loss import cross_entropy, mse_loss, multi_margin_loss, nll_loss
from .ops.matmul import linear
from .ops.norm import batch_norm, group_norm, instance_norm, layer_norm, local_response_norm
from .ops.pad import pad
from .ops.pool import adaptive_avg_pool2d, avg_pool2d, max_pool2d
from .ops.reduce import log_softmax, softmax

__all__ = [
    "adaptive_avg_pool2d",
    "avg_pool2d",
    "conv2d",
    "max_pool2d",
    "pad",
    "dropout",
    "linear",
    "log_softmax",
    "relu",
    "sigmoid",
    "softmax",
    "tanh",
    "batch_norm",
    "cross_entropy",
    "group_norm",
    "instance_norm",
    "layer_norm",
    "local_response_norm",
    "mse_loss",
    "multi_margin_loss",
    "nll_loss",
]
