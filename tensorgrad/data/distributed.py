"""DistributedSampler: each rank's share of the data set's indices, as PyTorch's.

All ranks draw the same permutation (from ``seed`` and the epoch, so ``set_epoch``
before each epoch reshuffles, identically everywhere) and rank r takes every
``num_replicas``-th index from position r. To give every rank the same number of
samples the index list is first padded by repeating its beginning
(``drop_last=False``) or cut to a multiple of ``num_replicas`` (``drop_last=True``)::

    10 samples, 3 ranks:  [0..9] + [0, 1] -> rank 0: 0 3 6 9   rank 1: 1 4 7 0   rank 2: 2 5 8 1
    with drop_last:       [0..8]          -> rank 0: 0 3 6     rank 1: 1 4 7     rank 2: 2 5 8
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np


class DistributedSampler:
    """Iterates over this rank's indices of ``dataset``; ``len()`` is their number."""

    def __init__(self, dataset: Any, num_replicas: int | None = None, rank: int | None = None,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False):
        if num_replicas is None or rank is None:
            from .. import distributed as dist

            if not dist.is_initialized():
                raise RuntimeError("DistributedSampler: pass num_replicas and rank, or call "
                                   "tensorgrad.distributed.init_process_group() first")
            num_replicas = dist.get_world_size() if num_replicas is None else num_replicas
            rank = dist.get_rank() if rank is None else rank
        if not isinstance(num_replicas, (int, np.integer)) or num_replicas < 1:
            raise ValueError(f"DistributedSampler: num_replicas must be a positive int, got "
                             f"{num_replicas!r}")
        if not isinstance(rank, (int, np.integer)) or not 0 <= rank < num_replicas:
            raise ValueError(f"Invalid rank {rank}, rank should be in the interval "
                             f"[0, {num_replicas - 1}]")
        self.dataset = dataset
        self.num_replicas = int(num_replicas)
        self.rank = int(rank)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self.epoch = 0
        n = len(dataset)
        if self.drop_last and n % self.num_replicas:
            # the largest equal share that needs no repeated sample
            self.num_samples = math.ceil((n - self.num_replicas) / self.num_replicas)
        else:
            self.num_samples = math.ceil(n / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def __iter__(self) -> Iterator[int]:
        n = len(self.dataset)
        if self.shuffle:
            indices = np.random.default_rng([self.seed, self.epoch]).permutation(n)
        else:
            indices = np.arange(n)
        if not self.drop_last:
            padding = self.total_size - n
            if padding:  # repeat the list from its start (whole times if it is short)
                indices = np.concatenate([indices, np.resize(indices, padding)])
        else:
            indices = indices[:self.total_size]
        return iter(indices[self.rank:self.total_size:self.num_replicas].tolist())

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Choose the permutation of the coming epoch (the same on every rank)."""
        self.epoch = int(epoch)
