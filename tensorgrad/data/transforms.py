"""Batch transforms: data augmentation and normalisation of a whole (N, C, H, W) batch.

Each transform works on all N images at once with array operations (NumPy or CuPy,
whichever holds the batch), so augmenting costs a few array passes, not N Python
calls. Random choices (crop offsets, flips) are drawn per image on the host from a
NumPy Generator, so CPU and GPU batches are augmented identically. The generator is,
first found: the one passed in the call; while a DataLoader builds a batch, that
batch's own generator (also for a transform called inside a dataset's ``__getitem__``,
so augmentation does not depend on which worker thread builds the batch); the one
given to the constructor (``generator=`` a Generator or an int seed); else
tensorgrad's global CPU generator (``tg.manual_seed``).

Transforms take and return Tensors (or raw arrays); they record no gradients.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from .. import backend
from ..tensor import Tensor

# The generator of the batch the current thread is building (set by the DataLoader).
_batch = threading.local()


@contextlib.contextmanager
def loader_generator(generator: np.random.Generator) -> Iterator[None]:
    """Within the block, transforms in this thread draw from ``generator`` unless the
    call passes one (the DataLoader wraps the building of each batch in it)."""
    previous = getattr(_batch, "generator", None)
    _batch.generator = generator
    try:
        yield
    finally:
        _batch.generator = previous


def apply_transform(transform: Callable, x: Any, generator: np.random.Generator | None):
    """Call ``transform`` on ``x``, passing ``generator`` when it is one of ours (a plain
    function of one argument works too)."""
    if isinstance(transform, Transform):
        return transform(x, generator=generator)
    return transform(x)


class Transform:
    """Base class: subclasses implement ``apply(array, rng)`` on the raw (N, C, H, W)
    array; ``__call__`` unwraps and rewraps Tensors, picks the generator, and also takes
    one (C, H, W) image (as torchvision), treated as a batch of one."""

    def __init__(self, generator: np.random.Generator | int | None = None):
        if generator is not None and not isinstance(generator, np.random.Generator):
            generator = np.random.default_rng(generator)
        self.generator = generator

    def __call__(self, x, generator: np.random.Generator | None = None):
        rng = (generator or getattr(_batch, "generator", None) or self.generator
               or backend.generator(backend.Device("cpu")))
        data = x.data if isinstance(x, Tensor) else x
        if data.ndim not in (3, 4):
            raise ValueError(f"{type(self).__name__}: expected a batch (N, C, H, W) or one "
                             f"image (C, H, W), got shape {tuple(data.shape)}")
        out = self.apply(data[None], rng)[0] if data.ndim == 3 else self.apply(data, rng)
        return Tensor(out) if isinstance(x, Tensor) else out

    def apply(self, x, rng: np.random.Generator):
        raise NotImplementedError


def _pair(value: int | Sequence[int], name: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(pair) != 2 or any(not isinstance(v, (int, np.integer)) or v < 0 for v in pair):
        raise ValueError(f"{name} must be a non-negative int or a pair of them, got {value!r}")
    return int(pair[0]), int(pair[1])


def _padding(value: int | Sequence[int]) -> tuple[int, int, int, int]:
    """torchvision's padding: an int for every side, (left/right, top/bottom), or
    (left, top, right, bottom); returned in the last form."""
    sides = (value,) * 4 if isinstance(value, (int, np.integer)) else tuple(value)
    if len(sides) == 2:
        sides = sides * 2
    if len(sides) != 4 or any(not isinstance(v, (int, np.integer)) or v < 0 for v in sides):
        raise ValueError(f"RandomCrop padding must be a non-negative int, or a sequence of 2 "
                         f"(left/right, top/bottom) or 4 (left, top, right, bottom) of them, "
                         f"got {value!r}")
    return tuple(int(v) for v in sides)


class RandomCrop(Transform):
    """Zero-pad each image by ``padding`` (torchvision's forms: an int for every side,
    (left/right, top/bottom) or (left, top, right, bottom)), then cut a ``size`` =
    (height, width) window at a random position, a different one per image.

    Vectorised as one gather from a strided view: ``sliding_window_view`` sees the padded
    batch as (N, C, rows, cols, h, w), every h×w window at every position, without
    copying; indexing it with (n, :, top[n], left[n]) picks one window per image.
    """

    def __init__(self, size: int | Sequence[int], padding: int | Sequence[int] = 0,
                 generator: np.random.Generator | int | None = None):
        super().__init__(generator)
        self.size = _pair(size, "RandomCrop size")
        if min(self.size) == 0:
            raise ValueError(f"RandomCrop size must be positive, got {size!r}")
        self.padding = _padding(padding)  # (left, top, right, bottom)

    def apply(self, x, rng):
        xp = backend.get_array_module(x)
        n, _, h, w = x.shape
        (pl, pt, pr, pb), (ch, cw) = self.padding, self.size
        hp, wp = h + pt + pb, w + pl + pr
        if ch > hp or cw > wp:
            raise ValueError(f"RandomCrop: crop {self.size} is larger than the padded image "
                             f"({hp}, {wp}) (input {tuple(x.shape)}, padding {self.padding})")
        if any(self.padding):
            x = xp.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
        top = xp.asarray(rng.integers(0, hp - ch + 1, size=n))
        left = xp.asarray(rng.integers(0, wp - cw + 1, size=n))
        windows = xp.lib.stride_tricks.sliding_window_view(x, (ch, cw), axis=(2, 3))
        # the advanced indices (n, top, left) broadcast to (N,) and come first: (N, C, h, w)
        return windows[xp.arange(n), :, top, left]

    def __repr__(self) -> str:
        return f"RandomCrop(size={self.size}, padding={self.padding})"


class RandomHorizontalFlip(Transform):
    """Mirror each image left-right with probability ``p``, independently per image."""

    def __init__(self, p: float = 0.5, generator: np.random.Generator | int | None = None):
        super().__init__(generator)
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"RandomHorizontalFlip: p must be in [0, 1], got {p!r}")
        self.p = float(p)

    def apply(self, x, rng):
        xp = backend.get_array_module(x)
        flip = xp.asarray(rng.random(x.shape[0]) < self.p)
        return xp.where(flip[:, None, None, None], x[..., ::-1], x)

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


class Normalize(Transform):
    """Per channel: ``(x - mean[c]) / std[c]``, in the batch's dtype."""

    def __init__(self, mean: float | Sequence[float], std: float | Sequence[float]):
        super().__init__(None)
        self.mean = np.atleast_1d(np.asarray(mean, dtype=np.float64))
        self.std = np.atleast_1d(np.asarray(std, dtype=np.float64))
        if self.mean.ndim != 1 or self.std.ndim != 1 or self.mean.size != self.std.size:
            raise ValueError(f"Normalize: mean and std must be sequences of the same length, "
                             f"got {list(self.mean)} and {list(self.std)}")
        if np.any(self.std == 0):
            raise ValueError(f"Normalize: std must be non-zero, got {list(self.std)}")

    def apply(self, x, rng):
        xp = backend.get_array_module(x)
        c = x.shape[1]
        if x.dtype.kind != "f":
            raise TypeError(f"Normalize: expected a floating-point batch, got dtype {x.dtype}")
        if self.mean.size not in (1, c):
            raise ValueError(f"Normalize: {self.mean.size} channel means for a batch with "
                             f"{c} channels (shape {tuple(x.shape)})")
        # in x's dtype, so a float32 batch stays float32
        mean = xp.asarray(self.mean.astype(x.dtype)).reshape(1, -1, 1, 1)
        std = xp.asarray(self.std.astype(x.dtype)).reshape(1, -1, 1, 1)
        return (x - mean) / std

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean.tolist()}, std={self.std.tolist()})"


class Compose(Transform):
    """Apply ``transforms`` in order, all drawing from the same generator."""

    def __init__(self, transforms: Sequence[Callable]):
        super().__init__(None)
        self.transforms = list(transforms)

    def __call__(self, x, generator: np.random.Generator | None = None):
        for t in self.transforms:
            x = apply_transform(t, x, generator)
        return x

    def __repr__(self) -> str:
        return "Compose([" + ", ".join(repr(t) for t in self.transforms) + "])"
