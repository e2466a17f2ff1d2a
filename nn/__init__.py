"""``nn``: the thin neural-network layer on top of tensorgrad, with PyTorch's API.

    import nn
    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))
    optimizer = nn.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    print(nn.summary(model, (3, 32, 32)))
"""

from . import init, optim, utils
from .activation import Dropout, Flatten, ReLU, Sigmoid, Tanh
from .conv import Conv2d
from .linear import Linear
from .loss import CrossEntropyLoss, MSELoss
from .module import Identity, Module, ModuleList, Parameter, RemovableHandle, Sequential
from .normalization import (
    BatchNorm1d,
    BatchNorm2d,
    GroupNorm,
    InstanceNorm2d,
    LayerNorm,
    LocalResponseNorm,
)
from .pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d
from .summary import Summary, summary

__all__ = [
    "AdaptiveAvgPool2d", "AvgPool2d", "BatchNorm1d", "BatchNorm2d", "Conv2d", "CrossEntropyLoss",
    "Dropout", "Flatten", "GroupNorm", "Identity", "InstanceNorm2d", "LayerNorm", "Linear",
    "LocalResponseNorm", "MSELoss", "MaxPool2d", "Module", "ModuleList", "Parameter",
    "RemovableHandle", "ReLU", "Sequential", "Sigmoid", "Summary", "Tanh", "init", "optim",
    "summary", "utils",
]
