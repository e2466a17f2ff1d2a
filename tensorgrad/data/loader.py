"""DataLoader: a dataset cut into batches, optionally shuffled, loaded in worker threads.

Randomness is a pure function of ``(seed, epoch, batch position)``. Epoch ``e`` draws
its permutation from ``np.random.default_rng([seed, e])``, and batch ``b`` of that
epoch draws its augmentation from its own stream, the ``b``-th child of the seed
sequence ``[seed, e]`` (``SeedSequence([seed, e], spawn_key=(b,))``). No batch depends
on the random numbers another batch drew, so batches can be built in any order, by any
number of workers, and come out the same: ``num_workers=0, 1, 4`` give identical
batches, augmentation included. (Before workers existed, one generator per epoch was
shared by all its batches in turn; the permutations are unchanged, the augmentation
draws are not.) A run is reproducible, and resuming after a crash needs only the epoch
number: save ``loader.state_dict()`` (``{"seed", "epoch"}``) and ``load_state_dict``
it back, or call ``set_epoch``. The epoch counter advances each time iteration starts.
Resuming in the middle of an epoch is not supported (checkpoints are taken between
epochs).

Workers are threads, not processes. A batch is a few large array operations (fancy
indexing, ``astype``, the transforms' arithmetic), and NumPy releases the GIL inside
them, so threads overlap with each other and with the model's own NumPy work; and
threads need nothing pickled (a dataset may hold a lambda, an open file or CuPy
arrays) and nothing copied back between processes. The price: a dataset whose
``__getitem__`` is slow *pure Python* does not get faster with more threads, and a
dataset used by workers must be safe to read from several threads at once (the
built-in ones are: they only read their arrays). A worker count of ``k`` keeps up to
``k * prefetch_factor`` batches in flight and hands them to the loop in order.
"""

from __future__ import annotations

import collections
import functools
import inspect
import itertools
import math
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from .. import backend
from ..tensor import Tensor
from .dataset import collate
from .transforms import apply_transform, loader_generator


class DataLoader:
    """Iterate over ``dataset`` in batches, as PyTorch's ``torch.utils.data.DataLoader``.

    Which examples: ``0 .. len(dataset)-1`` in order, or a fresh permutation every
    epoch with ``shuffle=True``; or the indices a ``sampler`` yields (any iterable of
    ints, re-iterated every epoch; ``len(sampler)`` gives the loader's length; calling
    its ``set_epoch`` each epoch, if it has one, is the training loop's job, as in
    PyTorch), cut into batches of ``batch_size`` (the last one shorter unless
    ``drop_last``); or the lists of indices a ``batch_sampler`` yields, one per batch.

    How a batch is built: ``collate_fn([dataset[i] for i in batch])`` when a
    ``collate_fn`` is given; else ``dataset.get_batch(indices)`` when the dataset has it
    (one vectorised gather; for the built-in datasets a tuple ``(images, labels)`` of
    Tensors, float32 and int64); else the ``collate``-d examples. ``transform``
    (optional, not in PyTorch) is then applied to the first field of every batch,
    e.g. the images.

    ``seed`` fixes the shuffling and augmentation (default: drawn from tensorgrad's
    global CPU generator, so ``tg.manual_seed`` fixes it too); see the module docstring
    for how. Every random draw a batch makes through a tensorgrad transform (in
    ``get_batch``, in ``__getitem__``, in ``transform``) uses that batch's generator;
    draws from other sources (``np.random``, ``tg.rand``) are not routed there, so with
    workers they would depend on thread timing.

    ``num_workers=k`` builds batches in ``k`` background threads, keeping
    ``k * prefetch_factor`` (default 2) batches in flight; the batches are the same as
    with ``num_workers=0``, in the same order. ``prefetch=k`` (tensorgrad's older
    spelling, for ``num_workers=0``) keeps ``k`` batches ready in one background thread
    (``True`` means 2). Leaving a loop early stops the threads.

    ``pin_memory=True`` copies the batch's host (NumPy) arrays into page-locked memory
    when CUDA is available, so ``.cuda()`` copies them faster; on a machine without CUDA
    it does nothing (there is no device to copy to), and batches that are already CuPy
    arrays are left as they are.
    """

    def __init__(self, dataset: Any, batch_size: int = 1, shuffle: bool = False,
                 sampler: Iterable[int] | None = None,
                 batch_sampler: Iterable[Iterable[int]] | None = None,
                 num_workers: int = 0, collate_fn: Callable[[list], Any] | None = None,
                 pin_memory: bool = False, drop_last: bool = False, seed: int | None = None,
                 transform: Callable | None = None, prefetch: int | bool = 0, *,
                 prefetch_factor: int | None = None):
        if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
            raise TypeError(f"DataLoader: dataset must have __len__ and __getitem__, "
                            f"got {type(dataset).__name__}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive int, got {batch_size!r}")
        for name, value in (("sampler", sampler), ("batch_sampler", batch_sampler)):
            if value is not None and not isinstance(value, Iterable):
                raise TypeError(f"DataLoader: {name} must be an iterable of "
                                f"{'lists of ' if name == 'batch_sampler' else ''}indices, "
                                f"got {type(value).__name__}")
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler option is mutually exclusive with shuffle "
                             "(the sampler decides the order; shuffle inside it)")
        if batch_sampler is not None and (batch_size != 1 or shuffle or sampler is not None
                                          or drop_last):
            raise ValueError("DataLoader: batch_sampler option is mutually exclusive with "
                             "batch_size, shuffle, sampler, and drop_last")
        if isinstance(num_workers, bool) or not isinstance(num_workers, (int, np.integer)) \
                or num_workers < 0:
            raise ValueError(f"DataLoader: num_workers must be an int >= 0 (0 loads in the "
                             f"loop's own thread), got {num_workers!r}")
        if prefetch_factor is not None:
            if num_workers == 0:
                raise ValueError("DataLoader: prefetch_factor only applies with "
                                 "num_workers > 0; use prefetch= for num_workers=0")
            if isinstance(prefetch_factor, bool) or prefetch_factor < 1:
                raise ValueError(f"DataLoader: prefetch_factor must be a positive int, "
                                 f"got {prefetch_factor!r}")
        if collate_fn is not None and not callable(collate_fn):
            raise TypeError(f"DataLoader: collate_fn must be callable, "
                            f"got {type(collate_fn).__name__}")
        prefetch = 2 if prefetch is True else int(prefetch)
        if prefetch < 0:
            raise ValueError(f"DataLoader: prefetch must be >= 0, got {prefetch}")
        if prefetch and num_workers > 0:
            raise ValueError("DataLoader: prefetch= is for num_workers=0; with workers, "
                             "use prefetch_factor= (batches in flight per worker)")
        if seed is None:
            seed = int(backend.generator(backend.Device("cpu")).integers(2**63))
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.num_workers = int(num_workers)
        self.prefetch_factor = 2 if prefetch_factor is None else int(prefetch_factor)
        self.collate_fn = collate_fn
        self.pin_memory = bool(pin_memory)
        self.drop_last = bool(drop_last)
        self.seed = int(seed)
        self.transform = transform
        self.prefetch = prefetch
        self.epoch = 0
        self._get_batch = None if collate_fn is not None else getattr(dataset, "get_batch", None)
        self._pass_generator = _accepts(self._get_batch, "generator")
        self._pin = self.pin_memory and _cuda_available()

    def __len__(self) -> int:
        if self.batch_sampler is not None:
            return len(self.batch_sampler)
        n = len(self.sampler) if self.sampler is not None else len(self.dataset)
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
        epoch = self.epoch
        self.epoch += 1
        plan = enumerate(self._index_batches(epoch))  # (position, indices), made lazily
        load = functools.partial(self._load, epoch)
        if self.num_workers > 0:
            return _Workers(plan, load, self.num_workers,
                            self.num_workers * self.prefetch_factor)
        if self.prefetch:
            return _Workers(plan, load, 1, self.prefetch)
        return (load(position, indices) for position, indices in plan)

    def _index_batches(self, epoch: int) -> Iterator[np.ndarray]:
        """The indices of each batch of ``epoch``, in order (runs in the loop's thread)."""
        if self.batch_sampler is not None:
            for batch in self.batch_sampler:
                yield _as_indices(batch)
            return
        size = self.batch_size
        if self.sampler is not None:
            it = iter(self.sampler)
            while True:
                indices = _as_indices(list(itertools.islice(it, size)))
                if len(indices) == 0 or (self.drop_last and len(indices) < size):
                    return
                yield indices
        n = len(self.dataset)
        order = np.random.default_rng([self.seed, epoch]).permutation(n) if self.shuffle \
            else np.arange(n)
        stop = (n // size if self.drop_last else math.ceil(n / size)) * size
        for i in range(0, stop, size):
            yield order[i:i + size]

    def _load(self, epoch: int, position: int, indices: np.ndarray):
        """Build one batch (in a worker thread, or in the loop's own)."""
        # this batch's own random stream: independent of which thread builds it and when
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, epoch],
                                                           spawn_key=(position,)))
        with loader_generator(rng):
            if self.collate_fn is not None:
                batch = self.collate_fn([self.dataset[int(i)] for i in indices])
            elif self._get_batch is None:
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
        return _pin(batch) if self._pin else batch


def _as_indices(batch: Any) -> np.ndarray:
    indices = np.asarray(batch)
    if indices.size == 0:
        return indices.astype(np.int64).reshape(0)
    if indices.ndim != 1 or indices.dtype.kind not in "iu":
        raise TypeError(f"DataLoader: a sampler must yield int indices, got "
                        f"{indices.dtype} values of shape {indices.shape}")
    return indices.astype(np.int64, copy=False)


def _accepts(fn: Callable | None, name: str) -> bool:
    """Whether ``fn`` takes a keyword argument ``name`` (user datasets may not)."""
    if fn is None:
        return False
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):  # no signature available
        return False


# ---------------------------------------------------------------- pinned memory
def _cuda_available() -> bool:
    from .. import cuda

    return cuda.is_available()


def _pin(batch: Any) -> Any:
    """The batch with every host array copied into page-locked (pinned) memory."""
    if isinstance(batch, Tensor):
        if not isinstance(batch.data, np.ndarray):
            return batch  # already on a GPU
        import cupyx

        pinned = cupyx.empty_pinned(batch.data.shape, batch.data.dtype)
        pinned[...] = batch.data
        return Tensor(pinned)
    if isinstance(batch, tuple):
        return tuple(_pin(b) for b in batch)
    if isinstance(batch, list):
        return [_pin(b) for b in batch]
    if isinstance(batch, Mapping):
        return {k: _pin(v) for k, v in batch.items()}
    return batch


# ---------------------------------------------------------------- worker threads
def _shutdown(executor: ThreadPoolExecutor, pending: collections.deque, wait: bool) -> None:
    for future in pending:
        future.cancel()
    pending.clear()
    executor.shutdown(wait=wait, cancel_futures=True)


class _Workers:
    """Batches built by a pool of threads, ``depth`` in flight, handed out in order.

    The plan (which indices make each batch) is read in the consumer's thread, one batch
    ahead of submission, so a sampler is only ever iterated from one thread. The worker
    threads hold no reference to this object, so dropping it (``break`` out of the loop)
    lets it be finalised, which stops them.
    """

    def __init__(self, plan: Iterator, load: Callable, workers: int, depth: int):
        self._plan = plan
        self._load = load
        self._depth = depth
        self._pending: collections.deque[Future] = collections.deque()
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="tensorgrad-loader")
        self._finalizer = weakref.finalize(self, _shutdown, self._executor, self._pending,
                                           False)
        try:
            self._submit()
        except BaseException:
            self.close()
            raise

    def _submit(self) -> None:
        while len(self._pending) < self._depth:
            try:
                position, indices = next(self._plan)
            except StopIteration:
                return
            self._pending.append(self._executor.submit(self._load, position, indices))

    def __iter__(self) -> _Workers:
        return self

    def __next__(self):
        if not self._finalizer.alive or not self._pending:
            self.close()
            raise StopIteration
        future = self._pending.popleft()
        try:
            self._submit()  # keep the workers busy while this batch is waited for
            batch = future.result()
        except BaseException:  # a worker's error (or the sampler's) reaches the loop
            self.close()
            raise
        return batch

    def close(self) -> None:
        """Stop the worker threads and wait for them (idempotent)."""
        if self._finalizer.detach() is not None:
            _shutdown(self._executor, self._pending, True)

    def __enter__(self) -> _Workers:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
