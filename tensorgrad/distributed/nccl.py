"""NCCL for CUDA tensors, through CuPy's ``cupy.cuda.nccl``.

One communicator per process, on the GPU of the first CUDA tensor it reduces. NCCL
needs every rank to start from the same unique id: rank 0 makes it and MPI
broadcasts it. The calls take raw device pointers and are enqueued on CuPy's current
stream, so later work on that stream sees the result without a host synchronisation.
A non-blocking all-reduce (DistributedDataParallel's buckets) runs instead on the
communicator's own stream, after what the current stream has queued so far, so that it
can overlap the kernels of backward; its ``wait()`` makes the current stream wait for it
(an event, not a host synchronisation), as PyTorch's NCCL work does.
"""

from __future__ import annotations

import contextlib
import importlib
import warnings
from collections.abc import Callable, Iterator
from typing import Any

from .. import backend


def nccl_module() -> Any:
    """``cupy.cuda.nccl`` when CuPy, a GPU and the NCCL library are all there, else None."""
    if backend.cuda_unavailable_reason() is not None:
        return None
    try:
        with warnings.catch_warnings():  # CuPy warns when the library is missing
            warnings.simplefilter("ignore")
            nccl = importlib.import_module("cupy.cuda.nccl")
    except Exception:
        return None
    return nccl if getattr(nccl, "available", False) else None


class NcclCommunicator:
    """The NCCL collectives tensorgrad uses, on contiguous CuPy arrays, in place."""

    def __init__(self, mpi_comm: Any, device_index: int):
        self.nccl = nccl = nccl_module()
        if nccl is None:
            raise RuntimeError("NCCL is not available (CuPy, a GPU and cupy.cuda.nccl needed)")
        unique_id = nccl.get_unique_id() if mpi_comm.Get_rank() == 0 else None
        unique_id = mpi_comm.bcast(unique_id, root=0)
        self.device = device_index
        self.stream = None  # the side stream of non-blocking calls, made on first use
        with backend._cupy.cuda.Device(device_index):
            self.comm = nccl.NcclCommunicator(mpi_comm.Get_size(), unique_id,
                                              mpi_comm.Get_rank())
        self.dtypes = {"b": nccl.NCCL_INT8, "B": nccl.NCCL_UINT8, "i": nccl.NCCL_INT32,
                       "I": nccl.NCCL_UINT32, "l": nccl.NCCL_INT64, "q": nccl.NCCL_INT64,
                       "L": nccl.NCCL_UINT64, "Q": nccl.NCCL_UINT64, "e": nccl.NCCL_FLOAT16,
                       "f": nccl.NCCL_FLOAT32, "d": nccl.NCCL_FLOAT64}
        self.ops = {"sum": nccl.NCCL_SUM, "product": nccl.NCCL_PROD, "max": nccl.NCCL_MAX,
                    "min": nccl.NCCL_MIN}

    def _args(self, array) -> tuple[int, int, int]:
        """(device pointer, element count, NCCL dtype) of a contiguous array."""
        if array.device.id != self.device:
            raise RuntimeError(f"NCCL: the tensor is on cuda:{array.device.id}, but this "
                               f"process's communicator is on cuda:{self.device} (one GPU "
                               f"per rank)")
        if array.dtype.char not in self.dtypes:
            raise TypeError(f"NCCL: no reduction for dtype {array.dtype}")
        return array.data.ptr, array.size, self.dtypes[array.dtype.char]

    def _call(self, name: str, *args) -> None:
        """``self.comm.<name>(*args, stream)`` on this communicator's GPU and its current
        stream, where CuPy's later work on these arrays is queued too."""
        cuda = backend._cupy.cuda
        with cuda.Device(self.device):
            getattr(self.comm, name)(*args, cuda.get_current_stream().ptr)

    @contextlib.contextmanager
    def side_stream(self) -> Iterator[Callable[[], None]]:
        """Calls inside run on this communicator's own stream, after the work already
        queued on the current one; yields what makes the current stream wait for them."""
        cuda = backend._cupy.cuda
        with cuda.Device(self.device):
            if self.stream is None:
                self.stream = cuda.Stream(non_blocking=True)
            ready, done = cuda.Event(), cuda.Event()
            ready.record(cuda.get_current_stream())
            self.stream.wait_event(ready)

            def wait() -> None:
                with cuda.Device(self.device):
                    cuda.get_current_stream().wait_event(done)

            with self.stream:
                yield wait
            done.record(self.stream)

    def all_reduce(self, array, op: str) -> None:
        ptr, count, dtype = self._args(array)
        self._call("allReduce", ptr, ptr, count, dtype, self.ops[op])

    def broadcast(self, array, src: int) -> None:
        ptr, count, dtype = self._args(array)
        self._call("broadcast", ptr, ptr, count, dtype, src)

    def all_gather(self, send, recv) -> None:
        ptr, count, dtype = self._args(send)  # count: the elements each rank sends
        self._call("allGather", ptr, self._args(recv)[0], count, dtype)

    def reduce_scatter(self, send, recv, op: str) -> None:
        ptr, count, dtype = self._args(recv)  # count: the elements each rank receives
        self._call("reduceScatter", self._args(send)[0], ptr, count, dtype, self.ops[op])

    def destroy(self) -> None:
        self.comm.destroy()
