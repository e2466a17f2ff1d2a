"""``tg.functional`` (import as ``F``): the stateless layer functions.

Each is a thin wrapper that validates its arguments and calls the op's Function.
``nn.functional`` is this same module (``import nn.functional as F`` works too).
"""

from __future__ import annotations

from .ops.activation import elu, gelu, leaky_relu
from .ops.conv import conv2d, conv_transpose2d
from .ops.dropout import dropout, dropout2d
from .ops.elementwise import relu, sigmoid, tanh
from .ops.embedding import embedding, one_hot
from .ops.loss import (
    binary_cross_entropy_with_logits,
    cross_entropy,
    mse_loss,
    multi_margin_loss,
    nll_loss,
)
from .ops.matmul import linear
from .ops.norm import batch_norm, group_norm, instance_norm, layer_norm, local_response_norm
from .ops.pad import pad
from .ops.pool import adaptive_avg_pool2d, avg_pool2d, max_pool2d
from .ops.reduce import log_softmax, softmax

__all__ = [
    "adaptive_avg_pool2d",
    "avg_pool2d",
    "conv2d",
    "conv_transpose2d",
    "max_pool2d",
    "pad",
    "dropout",
    "dropout2d",
    "elu",
    "embedding",
    "gelu",
    "leaky_relu",
    "linear",
    "one_hot",
    "log_softmax",
    "relu",
    "sigmoid",
    "softmax",
    "tanh",
    "batch_norm",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "group_norm",
    "instance_norm",
    "layer_norm",
    "local_response_norm",
    "mse_loss",
    "multi_margin_loss",
    "nll_loss",
]
