"""``tg.data``: datasets, batch loading (shuffling, samplers, worker threads), batch
transforms.

    from tensorgrad.data import DataLoader, Digits, random_split, transforms as T
    train = Digits(train=True, transform=T.RandomCrop(8, padding=1))
    train, val = random_split(train, [0.9, 0.1], generator=0)
    for images, labels in DataLoader(train, batch_size=64, shuffle=True, seed=0,
                                     num_workers=2):
        ...                      # images (64, 1, 8, 8) float32, labels (64,) int64
"""

from . import transforms
from .dataset import Dataset, ImageDataset, Subset, TensorDataset, collate, random_split
from .datasets import CIFAR10, MNIST, Digits, FashionMNIST
from .distributed import DistributedSampler
from .loader import DataLoader
from .transforms import Compose, Normalize, RandomCrop, RandomHorizontalFlip

__all__ = [
    "CIFAR10", "MNIST", "Compose", "DataLoader", "Dataset", "Digits", "DistributedSampler",
    "FashionMNIST",
    "ImageDataset", "Normalize", "RandomCrop", "RandomHorizontalFlip", "Subset",
    "TensorDataset", "collate", "random_split", "transforms",
]
