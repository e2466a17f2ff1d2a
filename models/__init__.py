"""The architectures of the lecture "CNN Architectures", one file per family.

    import models
    net = models.resnet18()                  # torchvision's layout and parameter names
    net = models.resnet20(in_channels=1)     # CIFAR ResNet, 10 classes by default

ImageNet models (``num_classes=1000``): alexnet, zfnet, vgg11/13/16/19 (``batch_norm``),
googlenet (``aux_logits``), resnet18/34/50/101/152, preact_resnet18/34/50/101/152.
CIFAR models (``num_classes=10``): resnet20/32/44/56/110 and plain20/32/44/56/110.
Every constructor takes ``num_classes`` and ``in_channels``.
"""

from .alexnet import AlexNet, alexnet, zfnet
from .cifar_resnet import (
    CifarResNet,
    plain20,
    plain32,
    plain44,
    plain56,
    plain110,
    resnet20,
    resnet32,
    resnet44,
    resnet56,
    resnet110,
)
from .googlenet import GoogLeNet, GoogLeNetOutputs, googlenet
from .preact_resnet import (
    PreActResNet,
    preact_resnet18,
    preact_resnet34,
    preact_resnet50,
    preact_resnet101,
    preact_resnet152,
)
from .resnet import ResNet, resnet18, resnet34, resnet50, resnet101, resnet152
from .vgg import VGG, vgg11, vgg13, vgg16, vgg19

__all__ = [
    "AlexNet", "CifarResNet", "GoogLeNet", "GoogLeNetOutputs", "PreActResNet", "ResNet", "VGG",
    "alexnet", "zfnet", "vgg11", "vgg13", "vgg16", "vgg19", "googlenet",
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
    "preact_resnet18", "preact_resnet34", "preact_resnet50", "preact_resnet101",
    "preact_resnet152",
    "resnet20", "resnet32", "resnet44", "resnet56", "resnet110",
    "plain20", "plain32", "plain44", "plain56", "plain110",
]
