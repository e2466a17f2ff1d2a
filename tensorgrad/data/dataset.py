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
import inspect
import math
import numbers
import warnings
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


class Subset(Dataset):
    """The examples of ``dataset`` at ``indices``, in that order: ``subset[i]`` is
    ``dataset[indices[i]]``. A batch is the parent's ``get_batch`` of the mapped
    indices, so a subset of an array-backed dataset stays one gather per batch."""

    def __init__(self, dataset: Any, indices: Sequence[int]):
        index_array = np.asarray(indices.numpy() if isinstance(indices, Tensor) else indices)
        if index_array.size == 0:
            index_array = index_array.astype(np.int64).reshape(0)
        if index_array.ndim != 1 or index_array.dtype.kind not in "iu":
            raise TypeError(f"Subset: indices must be a 1-d sequence of ints, got "
                            f"{index_array.dtype} values of shape {index_array.shape}")
        n = len(dataset)
        if index_array.size and (index_array.min() < -n or index_array.max() >= n):
            bad = index_array[(index_array < -n) | (index_array >= n)][0]
            raise IndexError(f"Subset: index {int(bad)} is out of range for a dataset of {n}")
        self.dataset = dataset
        self.indices = indices
        self._indices = index_array.astype(np.int64, copy=False) % max(n, 1)

    def __getitem__(self, index):
        if isinstance(index, (list, tuple, np.ndarray)):  # as PyTorch: a list of examples
            return [self.dataset[int(self._indices[i])] for i in index]
        return self.dataset[int(self._indices[index])]

    def __len__(self) -> int:
        return len(self._indices)

    def get_batch(self, indices: np.ndarray, generator: np.random.Generator | None = None):
        parent = getattr(self.dataset, "get_batch", None)
        mapped = self._indices[np.asarray(indices, dtype=np.int64)]
        if parent is None:
            return collate([self.dataset[int(i)] for i in mapped])
        try:
            takes_generator = "generator" in inspect.signature(parent).parameters
        except (TypeError, ValueError):
            takes_generator = False
        return parent(mapped, generator=generator) if takes_generator else parent(mapped)


def random_split(dataset: Any, lengths: Sequence[int | float],
                 generator: np.random.Generator | int | None = None) -> list[Subset]:
    """Split ``dataset`` into non-overlapping random ``Subset``s of the given lengths,
    as PyTorch's ``random_split``.

    ``lengths`` are counts that add up to ``len(dataset)``, or fractions that add up to
    1: then each split gets ``floor(fraction * len(dataset))`` examples and the
    remainder is handed out one at a time, round-robin from the first split.
    ``generator`` (a NumPy Generator or an int seed) draws the permutation; default:
    tensorgrad's global CPU generator, so ``tg.manual_seed`` fixes the split.
    """
    n = len(dataset)
    lengths = list(lengths)
    if any(isinstance(v, bool) or not isinstance(v, numbers.Real) for v in lengths):
        raise TypeError(f"random_split: lengths must be numbers, got {lengths!r}")
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:  # fractions
        for i, frac in enumerate(lengths):
            if frac < 0 or frac > 1:
                raise ValueError(f"random_split: fraction at index {i} is not between 0 and 1 "
                                 f"({frac!r})")
        counts = [int(math.floor(n * frac)) for frac in lengths]
        for i in range(n - sum(counts)):  # the remainder, round-robin
            counts[i % len(counts)] += 1
        for i, count in enumerate(counts):
            if count == 0:
                warnings.warn(f"random_split: length of split at index {i} is 0; "
                              f"this might result in an empty dataset", stacklevel=2)
        lengths = counts
    if any(not isinstance(v, numbers.Integral) or v < 0 for v in lengths):
        raise ValueError(f"random_split: lengths must be non-negative ints (or fractions "
                         f"that sum to 1), got {lengths!r}")
    if sum(lengths) != n:
        raise ValueError(f"random_split: sum of input lengths ({sum(lengths)}) does not equal "
                         f"the length of the input dataset ({n})")
    if generator is None:
        generator = backend.generator(backend.Device("cpu"))
    elif not isinstance(generator, np.random.Generator):
        generator = np.random.default_rng(generator)
    order = generator.permutation(n)
    offsets = np.cumsum([0, *lengths])
    return [Subset(dataset, order[start:stop].tolist())
            for start, stop in zip(offsets[:-1], offsets[1:])]
