"""The collectives: every rank calls the same one, in the same order, and each gets
its part of the result in place.

==========================  ===============================================
``all_reduce(t, op)``       t ← op over the ranks of t (sum, mean, max, min)
``broadcast(t, src)``       t ← rank ``src``'s t
``all_gather(ts, t)``       ts[r] ← rank r's t
``reduce_scatter(o, ts)``   o ← op over the ranks of their ts[this rank]
==========================  ===============================================

A host array goes to MPI as it is (a buffer, no per-element Python; ``MPI.IN_PLACE``
where the result replaces the input); a CUDA array goes to NCCL. A non-contiguous
array is first copied into a contiguous one and written back afterwards. With
``async_op=True`` the MPI call is the non-blocking one (``Iallreduce`` ...) and the
returned ``Work`` finishes the job in ``wait()`` (the mean's division, a write-back).

Every collective that writes into a tensor bumps its version counter, as any
in-place change does, so a backward that saved the old values refuses to run.
The ``*_object`` collectives pickle (as PyTorch's): between the ranks of one job is
the only place tensorgrad uses pickle.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import backend
from ..tensor import Tensor
from .process_group import ProcessGroup, default_group


class ReduceOp(enum.Enum):
    """How ``all_reduce`` and ``reduce_scatter`` combine the ranks' values."""

    SUM = "sum"
    AVG = "avg"
    PRODUCT = "product"
    MAX = "max"
    MIN = "min"


class Work:
    """The handle of a collective started with ``async_op=True``."""

    def __init__(self, request: Any = None, finish: Callable[[], None] | None = None):
        self._request = request  # an MPI request, or None when the data is already there
        self._finish = finish

    def wait(self, timeout: Any = None) -> bool:
        """Block until the collective is done and its result is in the tensors."""
        if self._request is not None:
            self._request.Wait()
            self._request = None
        if self._finish is not None:
            finish, self._finish = self._finish, None
            finish()
        return True

    def is_completed(self) -> bool:
        return self._request is None or bool(self._request.Test())


def _done(work: Work, async_op: bool) -> Work | None:
    if async_op:
        return work
    work.wait()
    return None


# ------------------------------------------------------------------ checks


def _group(group: Any) -> ProcessGroup:
    if group is None:
        return default_group()
    if not isinstance(group, ProcessGroup):
        raise TypeError(f"group must be None or a group from dist.new_group(), got "
                        f"{type(group).__name__}")
    if group.comm is None:
        raise RuntimeError("this process group has been destroyed")
    return group


def _check_tensor(op: str, tensor: Any, name: str = "tensor") -> None:
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{op}: {name} must be a Tensor, got {type(tensor).__name__}")


def _check_op(where: str, op: Any, dtype) -> str:
    if not isinstance(op, ReduceOp):
        raise TypeError(f"{where}: op must be a dist.ReduceOp, got {op!r}")
    if op is ReduceOp.AVG and np.dtype(dtype).kind != "f":
        raise TypeError(f"{where}: ReduceOp.AVG needs a floating-point tensor, got {dtype}")
    return op.value


def _check_src(where: str, src: int, group: ProcessGroup) -> None:
    if not 0 <= src < group.size:
        raise ValueError(f"{where}: src={src} is not a rank of this job of {group.size}")


def _check_like(where: str, name: str, tensors: Any, like: Tensor, size: int) -> None:
    """``tensors`` is a list of ``size`` tensors of ``like``'s shape, dtype and device."""
    if not isinstance(tensors, (list, tuple)) or len(tensors) != size:
        n = len(tensors) if isinstance(tensors, (list, tuple)) else type(tensors).__name__
        raise ValueError(f"{where}: {name} must be a list of one tensor per rank "
                         f"({size}), got {n}")
    for i, t in enumerate(tensors):
        _check_tensor(where, t, f"{name}[{i}]")
        if t.shape != like.shape or t.dtype != like.dtype or t.device != like.device:
            raise ValueError(f"{where}: {name}[{i}] is {t.shape} {t.dtype} on {t.device}, "
                             f"expected {like.shape} {like.dtype} on {like.device}")


# ------------------------------------------------------------------ buffers


def _staged(array) -> tuple[Any, Callable[[], None] | None]:
    """A contiguous array the library can work on, and what writes it back into
    ``array`` afterwards (None when it is ``array`` itself)."""
    if array.flags.c_contiguous:
        return array, None
    buffer = backend.get_array_module(array).ascontiguousarray(array)

    def write_back():
        array[...] = buffer

    return buffer, write_back


def _then(*steps: Callable[[], None] | None) -> Callable[[], None]:
    def run():
        for step in steps:
            if step is not None:
                step()

    return run


def _mpi_op(group: ProcessGroup, op: str, dtype):
    MPI = group.MPI
    if np.dtype(dtype) == np.bool_:  # MPI reduces booleans with the logical ops only
        return MPI.LAND if op in ("min", "product") else MPI.LOR
    return {"sum": MPI.SUM, "avg": MPI.SUM, "product": MPI.PROD, "max": MPI.MAX,
            "min": MPI.MIN}[op]


def _host(group: ProcessGroup, *arrays) -> tuple[bool, tuple, Callable[[], None] | None]:
    """Whether MPI (not NCCL) moves ``arrays``; for CUDA arrays without NCCL, their host
    copies and what copies the first one (the result) back to the GPU."""
    if not backend.is_cupy_array(arrays[0]):
        return True, arrays, None
    if group.nccl_for(arrays[0]) is not None:
        return False, arrays, None
    hosts = tuple(backend.to_numpy(a) for a in arrays)

    def to_device():
        arrays[0][...] = backend._cupy.asarray(hosts[0])

    return True, hosts, to_device


# ------------------------------------------------------------------ collectives


def all_reduce(tensor: Tensor, op: ReduceOp = ReduceOp.SUM, group: Any = None,
               async_op: bool = False) -> Work | None:
    """Replace ``tensor`` on every rank by ``op`` over all ranks' values, in place."""
    g = _group(group)
    _check_tensor("all_reduce", tensor)
    name = _check_op("all_reduce", op, tensor.dtype)
    buffer, write_back = _staged(tensor.data)
    tensor._bump_version()
    mean = _divide_by(buffer, g.size) if op is ReduceOp.AVG else None
    on_host, (data,), to_device = _host(g, buffer)
    if not on_host:
        nccl_op = "sum" if name == "avg" else name
        if not async_op:
            g.nccl.all_reduce(data, nccl_op)
            return _done(Work(finish=_then(mean, write_back)), async_op)
        with g.nccl.side_stream() as wait_for_it:  # overlaps the kernels queued after it
            g.nccl.all_reduce(data, nccl_op)
        return Work(finish=_then(wait_for_it, mean, write_back))
    mpi_op = _mpi_op(g, name, data.dtype)
    if async_op:
        request = g.comm.Iallreduce(g.MPI.IN_PLACE, data, op=mpi_op)
        return Work(request, _then(to_device, mean, write_back))
    g.comm.Allreduce(g.MPI.IN_PLACE, data, op=mpi_op)
    return _done(Work(finish=_then(to_device, mean, write_back)), async_op)


def _divide_by(array, n: int) -> Callable[[], None]:
    def divide():
        array[...] /= n

    return divide


def broadcast(tensor: Tensor, src: int = 0, group: Any = None,
              async_op: bool = False) -> Work | None:
    """Replace ``tensor`` on every rank by rank ``src``'s, in place."""
    g = _group(group)
    _check_tensor("broadcast", tensor)
    _check_src("broadcast", src, g)
    buffer, write_back = _staged(tensor.data)
    tensor._bump_version()
    on_host, (data,), to_device = _host(g, buffer)
    if not on_host:
        g.nccl.broadcast(data, src)
        return _done(Work(finish=write_back), async_op)
    if async_op:
        return Work(g.comm.Ibcast(data, root=src), _then(to_device, write_back))
    g.comm.Bcast(data, root=src)
    return _done(Work(finish=_then(to_device, write_back)), async_op)


def all_gather_into_tensor(output_tensor: Tensor, input_tensor: Tensor, group: Any = None,
                           async_op: bool = False) -> Work | None:
    """``output_tensor`` (world_size · n elements, e.g. shape (world_size, *shape)) ←
    every rank's ``input_tensor`` (n elements), in rank order."""
    g = _group(group)
    _check_tensor("all_gather_into_tensor", output_tensor, "output_tensor")
    _check_tensor("all_gather_into_tensor", input_tensor, "input_tensor")
    if output_tensor.numel() != g.size * input_tensor.numel() or \
            output_tensor.dtype != input_tensor.dtype:
        raise ValueError(f"all_gather_into_tensor: output {output_tensor.shape} "
                         f"{output_tensor.dtype} must hold {g.size} copies of the input "
                         f"{input_tensor.shape} {input_tensor.dtype}")
    send = backend.get_array_module(input_tensor.data).ascontiguousarray(input_tensor.data)
    recv, write_back = _staged(output_tensor.data)
    output_tensor._bump_version()
    on_host, (recv_data, send_data), to_device = _host(g, recv, send)
    if not on_host:
        g.nccl.all_gather(send_data, recv_data)
        return _done(Work(finish=write_back), async_op)
    if async_op:
        return Work(g.comm.Iallgather(send_data, recv_data), _then(to_device, write_back))
    g.comm.Allgather(send_data, recv_data)
    return _done(Work(finish=_then(to_device, write_back)), async_op)


def all_gather(tensor_list: list[Tensor], tensor: Tensor, group: Any = None,
               async_op: bool = False) -> Work | None:
    """``tensor_list[r]`` ← rank r's ``tensor`` (one tensor per rank, all one shape)."""
    g = _group(group)
    _check_tensor("all_gather", tensor)
    _check_like("all_gather", "tensor_list", tensor_list, tensor, g.size)
    xp = backend.get_array_module(tensor.data)
    gathered = Tensor(xp.empty((g.size,) + tensor.shape, dtype=tensor.dtype))
    work = all_gather_into_tensor(gathered, tensor, group, async_op=True)

    def scatter_to_list():
        for i, t in enumerate(tensor_list):
            t.data[...] = gathered.data[i]
            t._bump_version()

    return _done(Work(work._request, _then(work._finish, scatter_to_list)), async_op)


def reduce_scatter(output: Tensor, input_list: list[Tensor], op: ReduceOp = ReduceOp.SUM,
                   group: Any = None, async_op: bool = False) -> Work | None:
    """``output`` on rank r ← ``op`` over the ranks of their ``input_list[r]``."""
    g = _group(group)
    _check_tensor("reduce_scatter", output, "output")
    _check_like("reduce_scatter", "input_list", input_list, output, g.size)
    name = _check_op("reduce_scatter", op, output.dtype)
    send = backend.get_array_module(output.data).stack([t.data for t in input_list])
    recv, write_back = _staged(output.data)
    output._bump_version()
    mean = _divide_by(recv, g.size) if op is ReduceOp.AVG else None
    on_host, (recv_data, send_data), to_device = _host(g, recv, send)
    if not on_host:
        g.nccl.reduce_scatter(send_data, recv_data, "sum" if name == "avg" else name)
        return _done(Work(finish=_then(mean, write_back)), async_op)
    mpi_op = _mpi_op(g, name, recv.dtype)
    if async_op:
        request = g.comm.Ireduce_scatter_block(send_data, recv_data, op=mpi_op)
        return Work(request, _then(to_device, mean, write_back))
    g.comm.Reduce_scatter_block(send_data, recv_data, op=mpi_op)
    return _done(Work(finish=_then(to_device, mean, write_back)), async_op)


def barrier(group: Any = None, async_op: bool = False) -> Work | None:
    """Return once every rank has called ``barrier``."""
    g = _group(group)
    if async_op:
        return Work(g.comm.Ibarrier())
    g.comm.Barrier()
    return None


# ------------------------------------------------------------------ Python objects


def all_gather_object(object_list: list, obj: Any, group: Any = None) -> None:
    """``object_list[r]`` ← rank r's ``obj`` (any picklable object; pickled)."""
    g = _group(group)
    if not isinstance(object_list, list) or len(object_list) != g.size:
        raise ValueError(f"all_gather_object: object_list must be a list of world_size "
                         f"({g.size}) entries, got {object_list!r}")
    object_list[:] = g.comm.allgather(obj)


def broadcast_object_list(object_list: list, src: int = 0, group: Any = None) -> None:
    """``object_list`` ← rank ``src``'s list, element by element (pickled). Every rank
    passes a list of the same length."""
    g = _group(group)
    _check_src("broadcast_object_list", src, g)
    if not isinstance(object_list, list):
        raise TypeError(f"broadcast_object_list: object_list must be a list, got "
                        f"{type(object_list).__name__}")
    received = g.comm.bcast(object_list if g.rank == src else None, root=src)
    if len(received) != len(object_list):
        raise ValueError(f"broadcast_object_list: rank {src} sent {len(received)} objects "
                         f"but rank {g.rank}'s object_list has {len(object_list)}")
    object_list[:] = received
