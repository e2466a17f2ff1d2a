"""Datasets: things with a length that give back examples by index.

A ``Dataset`` answers ``len(ds)`` and ``ds[i]`` (one example, a tuple of fields).
Going through ``ds[i]`` once per example is a Python loop per image, which is slow,
so a dataset may also answer ``ds.get_batch(indices)``: all the examples of a batch
at once, each field stacked along a new first axis. The default ``get_batch`` does
the per-example loop (``collate``); datasets backed by arrays override it with one
fancy-indexing operation per field, and the ``DataLoader`` always calls it.
"""

from __future__ import annotations

import abc
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .. import backend
from ..tensor import Tensor
from .transforms import apply_transform


class Dataset(abc.ABC):
    """A map-style dataset: subclasses implement ``__getitem__`` and ``__len__``.

    Override ``get_batch`` too when examples live in arrays: it is what the
    DataLoader calls, once per batch.
    """

    @abc.abstractmethod
    def __getitem__(self, index: int) -> Any: ...

    @abc.abstractmethod
    def __len__(self) -> int: ...

    def get_batch(self, indices: np.ndarray, generator: np.random.Generator | None = None):
        """The examples at ``indices`` (a 1-d int64 array), collated into a batch.

        ``generator`` is the random source for batch transforms (the DataLoader passes
        its own, so augmentation is reproducible); this generic version has none.
        """
        return collate([self[int(i)] for i in indices])


def collate(examples: Sequence[Any]):
    """Stack a list of examples into a batch, field by field, as PyTorch's
    ``default_collate``: tuples (and lists) of fields give a tuple of batched fields,
    dicts a dict, strings stay a list of strings, and everything else (Tensors, arrays,
    numbers) is stacked into one Tensor. Nested structures are batched recursively.

    Python ints become int64, Python floats float32 (as ``tg.tensor``); Tensors and
    arrays keep their dtype.
    """
    if not examples:
        raise ValueError("collate: got an empty list of examples")
    first = examples[0]
    if isinstance(first, (str, bytes)):
        return list(examples)
    if isinstance(first, Mapping):
        keys = set(first)
        if any(not isinstance(e, Mapping) or set(e) != keys for e in examples):
            raise ValueError("collate: examples are dicts with different keys")
        return {key: collate([e[key] for e in examples]) for key in first}
    if isinstance(first, (tuple, list)):
        n = len(first)
        if any(len(e) != n for e in examples):
            raise ValueError(f"collate: examples have different numbers of fields "
                             f"({sorted({len(e) for e in examples})})")
        return tuple(collate([e[k] for e in examples]) for k in range(n))
    return _stack(list(examples))


def _stack(values: list[Any]) -> Tensor:
    first = values[0]
    if isinstance(first, Tensor):
        xp = backend.get_array_module(first.data)
        return Tensor(xp.stack([v.data for v in values]))
    if backend.is_cupy_array(first):
        return Tensor(backend.get_array_module(first).stack(values))
    if isinstance(first, (bool, np.bool_)):
        return Tensor(np.asarray(values, dtype=np.bool_))
    if isinstance(first, numbers.Integral) and not isinstance(first, np.generic):
        return Tensor(np.asarray(values, dtype=np.int64))
    if isinstance(first, numbers.Real) and not isinstance(first, np.generic):
        return Tensor(np.asarray(values, dtype=np.float32))
    return Tensor(np.stack([np.asarray(v) for v in values]))


class TensorDataset(Dataset):
    """Examples are the rows of tensors of equal first dimension: ``ds[i]`` is
    ``(t0[i], t1[i], ...)``; a batch is one fancy-indexing per tensor."""

    def __init__(self, *tensors: Tensor | np.ndarray):
        if not tensors:
            raise ValueError("TensorDataset needs at least one tensor")
        tensors = tuple(t if isinstance(t, Tensor) else Tensor(t) for t in tensors)
        if any(t.ndim == 0 for t in tensors):
            raise ValueError("TensorDataset: 0-d tensors have no examples to index "
                             f"(shapes {[t.shape for t in tensors]})")
        sizes = {t.shape[0] for t in tensors}
        if len(sizes) != 1:
            raise ValueError("TensorDataset: tensors must have the same first dimension, "
                             f"got shapes {[t.shape for t in tensors]}")
        self.tensors = tensors

    def __getitem__(self, index):
        return tuple(Tensor(t.data[index]) for t in self.tensors)

    def __len__(self) -> int:
        return self.tensors[0].shape[0]

    def get_batch(self, indices: np.ndarray, generator: np.random.Generator | None = None):
        batch = []
        for t in self.tensors:  # a loop over fields (a handful), not over examples
            xp = backend.get_array_module(t.data)
            batch.append(Tensor(t.data[xp.asarray(indices)]))
        return tuple(batch)


class ImageDataset(Dataset):
    """Images in one array, labels in another: what every built-in dataset is.

    ``images`` is (N, C, H, W), stored compactly (e.g. uint8 pixels); a batch comes out
    as float32 ``images / max_value`` in [0, 1], converted per batch so a dataset of
    uint8 costs a quarter of its float32 size in memory. ``labels`` is (N,) int64.
    ``transform`` is applied to each whole float32 image batch (see transforms.py).
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, max_value: float = 1.0,
                 transform=None):
        images, labels = np.asarray(images), np.asarray(labels)
        if images.ndim != 4 or labels.shape != images.shape[:1]:
            raise ValueError(f"ImageDataset: expected images (N, C, H, W) and labels (N,), "
                             f"got images {images.shape} and labels {labels.shape}")
        self.images = images
        self.labels = labels.astype(np.int64, copy=False)
        self.max_value = max_value
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        index = int(index)
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} is out of range for a dataset of {len(self)}")
        image, label = self.get_batch(np.array([index % len(self)]))
        return Tensor(image.data[0]), Tensor(label.data[0])

    def get_batch(self, indices: np.ndarray, generator: np.random.Generator | None = None):
        images = self.images[indices].astype(np.float32)
        images /= np.float32(self.max_value)
        x = Tensor(images)
        if self.transform is not None:
            x = apply_transform(self.transform, x, generator)
        return x, Tensor(self.labels[indices])

    @property
    def targets(self) -> np.ndarray:
        """The labels, under torchvision's name."""
        return self.labels
