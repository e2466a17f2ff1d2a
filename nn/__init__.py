"""``nn``: the thin neural-network layer on top of tensorgrad, with PyTorch's API.

    import nn
    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))
    optimizer = nn.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    print(nn.summary(model, (3, 32, 32)))

``nn.functional`` is ``tensorgrad.functional`` itself (``import nn.functional as F``).
"""

import sys

from tensorgrad import functional

from . import init, optim, parallel, utils
from .activation import (
    ELU,
    GELU,
    Dropout,
    Dropout2d,
    Flatten,
    LeakyReLU,
    LogSoftmax,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
)
from .conv import Conv2d, ConvTranspose2d
from .linear import Linear
from .loss import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss, NLLLoss
from .module import (
    Identity,
    Module,
    ModuleDict,
    ModuleList,
    Parameter,
    RemovableHandle,
    Sequential,
)
from .normalization import (
    BatchNorm1d,
    BatchNorm2d,
    GroupNorm,
    InstanceNorm2d,
    LayerNorm,
    LocalResponseNorm,
)
from .parallel import SyncBatchNorm
from .pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d
from .sparse import Embedding
from .summary import Summary, summary

# one module under two names: ``import nn.functional`` finds it here, no second copy
sys.modules[__name__ + ".functional"] = functional

__all__ = [
    "AdaptiveAvgPool2d", "AvgPool2d", "BCEWithLogitsLoss", "BatchNorm1d", "BatchNorm2d",
    "Conv2d", "ConvTranspose2d", "CrossEntropyLoss", "Dropout", "Dropout2d", "ELU", "Embedding",
    "Flatten", "GELU",
    "GroupNorm", "Identity", "InstanceNorm2d", "LayerNorm", "LeakyReLU", "Linear",
    "LocalResponseNorm", "LogSoftmax", "MSELoss", "MaxPool2d", "Module", "ModuleDict",
    "ModuleList", "NLLLoss", "Parameter", "RemovableHandle", "ReLU", "Sequential", "Sigmoid",
    "Softmax", "Summary", "SyncBatchNorm", "Tanh", "functional", "init", "optim", "parallel",
    "summary", "utils",
]
