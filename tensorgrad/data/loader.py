"""DataLoader: a dataset cut into batches, optionally shuffled, optionally prefetched.

Randomness is a pure function of ``(seed, epoch)``: epoch ``e`` draws its permutation
and its augmentation from ``np.random.default_rng([seed, e])``. So a run is
reproducible, and resuming after a crash needs only the epoch number: save
``loader.state_dict()`` (``{"seed", "epoch"}``) and ``load_state_dict`` it back, or
call ``set_epoch``. The epoch counter advances each time iteration starts. Resuming
in the middle of an epoch is not supported (checkpoints are taken between epochs).

With ``prefetch=k`` a background thread assembles up to ``k`` batches ahead, so the
next batch is ready while the model computes (NumPy's copies and arithmetic release
the GIL). The batches are the same as without prefetch, in the same order; leaving a
loop early stops the thread.
"""

from __future__ import annotations

import inspect
import math
import queue
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from .. import backend
from .dataset import collate
from .transforms import apply_transform


class DataLoader:
    """Iterate over ``dataset`` in batches of ``batch_size``.

    Each batch is what ``dataset.get_batch(indices)`` returns (for the built-in
    datasets, a tuple ``(images, labels)`` of Tensors, float32 and int64), or the
    ``collate``-d examples for a dataset that only has ``__getitem__``.

    ``seed`` fixes the shuffling and augmentation (default: drawn from tensorgrad's
    global CPU generator, so ``tg.manual_seed`` fixes it too). ``transform`` (optional)
    is applied to the first field of every batch, e.g. the images. ``prefetch`` is the
    number of batches a background thread keeps ready (``True`` means 2; 0 or False
    means none).
    """

    def __init__(self, dataset: Any, batch_size: int = 1, shuffle: bool = False,
                 drop_last: bool = False, seed: int | None = None,
                 transform: Callable | None = None, prefetch: int | bool = 0):
        if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
            raise TypeError(f"DataLoader: dataset must have __len__ and __getitem__, "
                            f"got {type(dataset).__name__}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive int, got {batch_size!r}")
        prefetch = 2 if prefetch is True else int(prefetch)
        if prefetch < 0:
            raise ValueError(f"DataLoader: prefetch must be >= 0, got {prefetch}")
        if seed is None:
            seed = int(backend.generator(backend.Device("cpu")).integers(2**63))
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.seed = int(seed)
        self.transform = transform
        self.prefetch = prefetch
        self.epoch = 0
        self._get_batch = getattr(dataset, "get_batch", None)
        self._pass_generator = _accepts(self._get_batch, "generator")

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    # ------------------------------------------------------------ resumable state
    def state_dict(self) -> dict:
        return {"seed": self.seed, "epoch": self.epoch}

    def load_state_dict(self, state: dict) -> None:
        self.seed, self.epoch = int(state["seed"]), int(state["epoch"])

    def set_epoch(self, epoch: int) -> None:
        """The next iteration is epoch ``epoch`` (its permutation and augmentation)."""
        self.epoch = int(epoch)

    # ------------------------------------------------------------------ batches
    def __iter__(self) -> Iterator:
        rng = np.random.default_rng([self.seed, self.epoch])
        self.epoch += 1
        n = len(self.dataset)
        order = rng.permutation(n) if self.shuffle else np.arange(n)
        stop = len(self) * self.batch_size
        batches = (self._batch(order[i:i + self.batch_size], rng)
                   for i in range(0, stop, self.batch_size))
        return _Prefetcher(batches, self.prefetch) if self.prefetch else batches

    def _batch(self, indices: np.ndarray, rng: np.random.Generator):
        if self._get_batch is None:
            batch = collate([self.dataset[int(i)] for i in indices])
        elif self._pass_generator:
            batch = self._get_batch(indices, generator=rng)
        else:
            batch = self._get_batch(indices)
        if self.transform is not None:
            if isinstance(batch, tuple):
                batch = (apply_transform(self.transform, batch[0], rng),) + batch[1:]
            else:
                batch = apply_transform(self.transform, batch, rng)
        return batch


def _accepts(fn: Callable | None, name: str) -> bool:
    """Whether ``fn`` takes a keyword argument ``name`` (user datasets may not)."""
    if fn is None:
        return False
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):  # no signature available
        return False


# ---------------------------------------------------------------- prefetching
_END = object()


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


def _produce(batches: Iterator, out: queue.Queue, stop: threading.Event) -> None:
    """The background thread: fill ``out`` until the batches run out or ``stop`` is set.

    A module-level function, not a method, so the thread holds no reference to the
    _Prefetcher and dropping the iterator (``break``) lets it be finalised.
    """
    def put(item) -> bool:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    try:
        for batch in batches:
            if not put(batch):
                return
        put(_END)
    except BaseException as e:  # handed to the consumer, raised there
        put(_Failure(e))


def _shutdown(stop: threading.Event, out: queue.Queue, thread: threading.Thread) -> None:
    stop.set()
    while True:  # unblock a producer waiting on a full queue
        try:
            out.get_nowait()
        except queue.Empty:
            break
    if thread is not threading.current_thread():
        thread.join()


class _Prefetcher:
    """An iterator over ``batches`` computed ``depth`` ahead in a daemon thread."""

    def __init__(self, batches: Iterator, depth: int):
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=_produce, args=(batches, self._queue, self._stop),
                                        name="tensorgrad-prefetch", daemon=True)
        self._thread.start()
        # runs on close(), or when the iterator is garbage-collected after an early break
        self._finalizer = weakref.finalize(self, _shutdown, self._stop, self._queue, self._thread)

    def __iter__(self) -> _Prefetcher:
        return self

    def __next__(self):
        if not self._finalizer.alive:
            raise StopIteration
        item = self._queue.get()
        if item is _END:
            self.close()
            raise StopIteration
        if isinstance(item, _Failure):
            self.close()
            raise item.error
        return item

    def close(self) -> None:
        """Stop the background thread and wait for it (idempotent)."""
        self._finalizer()

    def __enter__(self) -> _Prefetcher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
