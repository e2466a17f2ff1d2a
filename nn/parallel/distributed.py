"""DistributedDataParallel: one model per process, gradients averaged in buckets.

Each of N ranks holds a full copy of the model and takes 1/N of the batch. If every
copy starts from the same weights and applies the same update, they stay equal; the
update is the same when every rank uses the average of the N gradients. For a loss
that is a mean over the batch, that average *is* the gradient of the whole batch:
(1/N)·Σ_r ∇(mean over shard r) = ∇(mean over all) when the shards are equal.

So DDP does three things:

1. At construction, check that every rank has the same parameters (names, shapes,
   dtypes: a mismatch raises on every rank instead of hanging) and copy rank 0's
   parameters and buffers to all (``broadcast``).
2. Before each forward, broadcast rank 0's buffers (BatchNorm's running statistics).
3. During backward, average the gradients. Parameters are grouped into *buckets* of
   about ``bucket_cap_mb`` in reverse registration order (the order backward reaches
   them); a post-accumulate-grad hook marks a parameter ready, and once a bucket is
   complete its gradients are copied into one flat buffer and a non-blocking
   allreduce starts, while the rest of backward goes on. Buckets are launched in
   order on every rank (MPI and NCCL need the same order everywhere); when the last
   one has started, all are waited for and the averages copied back into ``.grad``.

Which parameters get a gradient is known at the end of forward, by walking the
recorded graph from the outputs; one small all-gather of these flags tells every rank
who used what. A parameter unused on some rank is an error (raised on every rank)
unless ``find_unused_parameters=True``, which counts it as a zero gradient there and
leaves ``.grad`` alone where no rank used it (as PyTorch).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

import tensorgrad as tg
import tensorgrad.distributed as dist
from tensorgrad import backend
from tensorgrad.tensor import Tensor

from ..module import Module

FIRST_BUCKET_BYTES = 1024 * 1024  # as PyTorch: a small first bucket starts communication early


class _Bucket:
    """Parameters whose gradients are reduced together, through one flat buffer."""

    def __init__(self, params: list):
        self.params = params
        self.slices = []  # (start, stop, shape) of each parameter in the flat buffer
        start = 0
        for p in params:
            self.slices.append((start, start + p.numel(), p.shape))
            start += p.numel()
        xp = backend.get_array_module(params[0].data)
        self.flat = Tensor(xp.zeros(start, dtype=params[0].dtype))
        self.pending = 0
        self.work: dist.Work | None = None

    def views(self) -> Iterator[tuple[Any, Any]]:
        for p, (start, stop, shape) in zip(self.params, self.slices):
            yield p, self.flat.data[start:stop].reshape(shape)


class DistributedDataParallel(Module):
    """Data-parallel training of ``module`` over the ranks of the default process group.

    ``device_ids``: None for host tensors, or ``[i]`` (an int or ``"cuda:i"``): the GPU
    this rank's model lives on (usually the local rank). ``bucket_cap_mb``: the size of
    the gradient buckets. ``broadcast_buffers``: copy rank 0's buffers before every
    forward. ``find_unused_parameters``: accept parameters that get no gradient.
    """

    def __init__(self, module: Module, device_ids: list | None = None,
                 bucket_cap_mb: float = 25, broadcast_buffers: bool = True,
                 find_unused_parameters: bool = False):
        super().__init__()
        if not dist.is_initialized():
            raise RuntimeError("DistributedDataParallel: call tensorgrad.distributed."
                               "init_process_group() first")
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel: module must be an nn.Module, got "
                            f"{type(module).__name__}")
        if not bucket_cap_mb > 0:
            raise ValueError(f"DistributedDataParallel: bucket_cap_mb must be > 0, got "
                             f"{bucket_cap_mb}")
        params = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        if not params:
            raise RuntimeError("DistributedDataParallel is not needed when a module doesn't "
                               "have any parameter that requires a gradient.")
        self.device_ids = _check_devices(module, device_ids)
        self.module = module
        self.broadcast_buffers = broadcast_buffers
        self.find_unused_parameters = find_unused_parameters
        self.bucket_cap_mb = bucket_cap_mb
        self.require_backward_grad_sync = True
        self.world_size = dist.get_world_size()

        _check_same_model(module)
        _broadcast_coalesced(list(module.parameters()) + list(module.buffers()))
        self._names = [n for n, _ in params]
        self._params = [p for _, p in params]
        self._index = {id(p): i for i, p in enumerate(self._params)}
        self._buckets, self._bucket_of = _make_buckets(self._params, bucket_cap_mb)
        # the gradient buckets have a communicator of their own, so their non-blocking
        # reductions are never interleaved with other collectives (SyncBatchNorm's)
        self._group = dist.new_group()
        self._hooks = [p.register_post_accumulate_grad_hook(self._grad_ready)
                       for p in self._params]
        self._expecting = False  # a synchronised backward is under way
        self._ready = np.zeros(len(self._params), dtype=bool)
        self._unused_everywhere = np.zeros(len(self._params), dtype=bool)
        self._next_bucket = 0

    # ------------------------------------------------------------ forward
    def forward(self, *inputs: Any, **kwargs: Any) -> Any:
        if self._expecting and self._next_bucket > 0:
            raise RuntimeError(
                "DistributedDataParallel: expected to have finished reduction in the prior "
                "iteration before starting a new one: some parameters did not receive a "
                "gradient in the last backward (was it run on only part of the outputs?)")
        sync = tg.is_grad_enabled() and self.require_backward_grad_sync
        if sync and self.broadcast_buffers and self.world_size > 1:
            _broadcast_coalesced(list(self.module.buffers()))
        output = self.module(*inputs, **kwargs)
        self._expecting = False
        if sync:
            self._prepare_for_backward(output)
        return output

    @contextlib.contextmanager
    def no_sync(self) -> Iterator[None]:
        """Inside, forward/backward accumulate gradients locally, without communication;
        the first synchronised backward after it averages the accumulated sum."""
        previous = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = previous

    def _prepare_for_backward(self, output: Any) -> None:
        used = _leaves_reached(output)
        local = np.array([id(p) in used for p in self._params], dtype=np.uint8)
        everyone = Tensor(np.empty((self.world_size, local.size), dtype=np.uint8))
        dist.all_gather_into_tensor(everyone, Tensor(local))
        used_by = everyone.data.astype(bool)  # [rank, parameter]
        if not self.find_unused_parameters and not used_by.all():
            raise RuntimeError(_unused_message(self._names, used_by))
        self._unused_everywhere = ~used_by.any(axis=0)
        self._ready[:] = False
        for bucket in self._buckets:
            bucket.pending = len(bucket.params)
            bucket.work = None
        self._next_bucket = 0
        self._expecting = True
        for i in np.flatnonzero(~local.astype(bool)):  # no gradient will come: zero
            self._mark_ready(int(i))

    # ------------------------------------------------------------ backward
    def _grad_ready(self, param: Tensor) -> None:
        """The post-accumulate-grad hook of every parameter."""
        if not self._expecting:
            return  # forward ran without synchronisation (no_sync, no_grad)
        i = self._index[id(param)]
        if self._ready[i]:
            raise RuntimeError(
                f"DistributedDataParallel: expected to mark a variable ready only once; "
                f"parameter '{self._names[i]}' got a second gradient in this iteration "
                f"(backward run twice after one forward? use no_sync() to accumulate)")
        self._mark_ready(i)

    def _mark_ready(self, i: int) -> None:
        self._ready[i] = True
        bucket = self._bucket_of[i]
        bucket.pending -= 1
        # launch every complete bucket in order: all ranks start the same sequence
        while self._next_bucket < len(self._buckets) and \
                self._buckets[self._next_bucket].pending == 0:
            self._launch(self._buckets[self._next_bucket])
            self._next_bucket += 1
        if self._next_bucket == len(self._buckets):
            self._finish()

    def _launch(self, bucket: _Bucket) -> None:
        for p, view in bucket.views():
            if p.grad is None:  # unused here: contributes zero
                view[...] = 0
            else:
                view[...] = p.grad.data
        bucket.work = dist.all_reduce(bucket.flat, op=dist.ReduceOp.AVG, group=self._group,
                                      async_op=True)

    def _finish(self) -> None:
        self._expecting = False
        self._next_bucket = 0
        for bucket in self._buckets:
            bucket.work.wait()
            bucket.work = None
            for p, view in bucket.views():
                if self._unused_everywhere[self._index[id(p)]]:
                    continue  # no rank computed a gradient: .grad stays as it was
                if p.grad is None:
                    p.grad = Tensor(view.copy())
                else:
                    p.grad.data[...] = view
                    p.grad._bump_version()

    def extra_repr(self) -> str:
        return (f"world_size={self.world_size}, buckets={len(self._buckets)}, "
                f"bucket_cap_mb={self.bucket_cap_mb}")


# ------------------------------------------------------------------ helpers


def _check_devices(module: Module, device_ids: list | None) -> list | None:
    if device_ids is None:
        return None
    if not isinstance(device_ids, (list, tuple)) or len(device_ids) != 1:
        raise ValueError(f"DistributedDataParallel: device_ids can only be None or contain a "
                         f"single element (one GPU per process), got {device_ids!r}")
    d = device_ids[0]
    device = backend.parse_device(f"cuda:{d}" if isinstance(d, int) else d)
    for name, t in list(module.named_parameters()) + list(module.named_buffers()):
        if t.device != device:
            raise ValueError(f"DistributedDataParallel: device_ids={list(device_ids)} but "
                             f"'{name}' is on {t.device}; move the model with "
                             f"model.to('{device}') first")
    return [device]


def _check_same_model(module: Module) -> None:
    """Every rank's parameter and buffer names, shapes and dtypes equal rank 0's, or a
    RuntimeError naming the first differences, raised on every rank alike."""
    mine = [(kind, name, tuple(t.shape), str(t.dtype))
            for kind, named in (("parameter", module.named_parameters()),
                                ("buffer", module.named_buffers()))
            for name, t in named]
    every = [None] * dist.get_world_size()
    dist.all_gather_object(every, mine)
    reference = {(kind, name): (shape, dtype) for kind, name, shape, dtype in every[0]}
    problems = []
    for rank, entries in enumerate(every[1:], start=1):
        own = {(kind, name): (shape, dtype) for kind, name, shape, dtype in entries}
        for key, (shape, dtype) in own.items():
            if key not in reference:
                problems.append(f"{key[0]} '{key[1]}' exists on rank {rank} but not on rank 0")
            elif reference[key] != (shape, dtype):
                problems.append(f"{key[0]} '{key[1]}' is {shape} {dtype} on rank {rank} but "
                                f"{reference[key][0]} {reference[key][1]} on rank 0")
        problems += [f"{kind} '{name}' exists on rank 0 but not on rank {rank}"
                     for kind, name in reference if (kind, name) not in own]
        if not problems and [e[:2] for e in entries] != [e[:2] for e in every[0]]:
            problems.append(f"rank {rank} registers its parameters in another order than "
                            f"rank 0")
    if problems:
        shown = "; ".join(problems[:5]) + (" ..." if len(problems) > 5 else "")
        raise RuntimeError(f"DistributedDataParallel: every rank must hold the same model: "
                           f"{shown}")


def _broadcast_coalesced(tensors: list[Tensor]) -> None:
    """Rank 0's values into ``tensors`` on every rank: one broadcast per dtype and
    device, of all of them packed into one flat buffer."""
    groups: dict[tuple, list[Tensor]] = {}
    for t in tensors:
        groups.setdefault((t.dtype, t.device), []).append(t)
    for group in groups.values():
        xp = backend.get_array_module(group[0].data)
        flat = Tensor(xp.concatenate([t.data.reshape(-1) for t in group]))
        dist.broadcast(flat, src=0)
        start = 0
        for t in group:
            t.data[...] = flat.data[start:start + t.numel()].reshape(t.shape)
            t._bump_version()
            start += t.numel()


def _make_buckets(params: list, bucket_cap_mb: float) -> tuple[list[_Bucket], list[_Bucket]]:
    """Buckets of about ``bucket_cap_mb`` MiB from the parameters in reverse order (the
    order backward produces their gradients), one dtype and device per bucket."""
    cap = bucket_cap_mb * 1024 * 1024
    buckets: list[list] = []
    size = 0
    for p in reversed(params):
        limit = min(cap, FIRST_BUCKET_BYTES) if len(buckets) == 1 else cap
        if not buckets or (size + p.data.nbytes > limit and buckets[-1]) or \
                (p.dtype, p.device) != (buckets[-1][0].dtype, buckets[-1][0].device):
            buckets.append([])
            size = 0
        buckets[-1].append(p)
        size += p.data.nbytes
    made = [_Bucket(ps) for ps in buckets]
    bucket_of = [None] * len(params)
    index = {id(p): i for i, p in enumerate(params)}
    for bucket in made:
        for p in bucket.params:
            bucket_of[index[id(p)]] = bucket
    return made, bucket_of


def _tensors_in(output: Any) -> Iterator[Tensor]:
    if isinstance(output, Tensor):
        yield output
    elif isinstance(output, (list, tuple)):
        for item in output:
            yield from _tensors_in(item)
    elif isinstance(output, dict):
        for item in output.values():
            yield from _tensors_in(item)


def _leaves_reached(output: Any) -> set[int]:
    """The ids of the leaf tensors a backward from ``output`` will reach: a walk over
    the recorded graph (each node once)."""
    leaves: set[int] = set()
    seen = set()
    stack = []
    for t in _tensors_in(output):
        if t.grad_fn is not None:
            stack.append(t.grad_fn)
        elif t.requires_grad:
            leaves.add(id(t))
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        for tensor, edge in zip(node.inputs, node.edges):
            if edge is None:
                continue
            if edge[0] is None:
                leaves.add(id(tensor))
            else:
                stack.append(edge[0])
    return leaves


def _unused_message(names: list[str], used_by: np.ndarray) -> str:
    lines = []
    for rank in range(used_by.shape[0]):
        missing = [names[i] for i in np.flatnonzero(~used_by[rank])]
        if missing:
            shown = ", ".join(f"'{n}'" for n in missing[:8]) + (" ..." if len(missing) > 8
                                                                else "")
            lines.append(f"rank {rank}: {shown}")
    return ("DistributedDataParallel: some parameters were not used in producing the output, "
            "so they would receive no gradient (" + "; ".join(lines) + "). Pass "
            "find_unused_parameters=True to count their gradient as zero, or remove them "
            "from the model.")
