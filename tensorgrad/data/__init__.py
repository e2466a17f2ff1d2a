"""``tg.data``: datasets, batch loading with shuffling and prefetch, batch transforms.

    from tensorgrad.data import DataLoader, Digits, transforms as T
    train = Digits(train=True, transform=T.RandomCrop(8, padding=1))
    for images, labels in DataLoader(train, batch_size=64, shuffle=True, seed=0):
        ...                      # images (64, 1, 8, 8) float32, labels (64,) int64
"""

from . import transforms
from .dataset import Dataset, ImageDataset, TensorDataset, collate
from .datasets import CIFAR10, MNIST, Digits, FashionMNIST
from .loader import DataLoader
from .transforms import Compose, Normalize, RandomCrop, RandomHorizontalFlip

__all__ = [
    "CIFAR10", "MNIST", "Compose", "DataLoader", "Dataset", "Digits", "FashionMNIST",
    "ImageDataset", "Normalize", "RandomCrop", "RandomHorizontalFlip", "TensorDataset",
    "collate", "transforms",
]
