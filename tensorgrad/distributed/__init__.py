"""``tensorgrad.distributed``: collectives between the processes of one job, PyTorch's API.

    # mpiexec -n 4 python train.py
    import tensorgrad.distributed as dist
    dist.init_process_group()                 # rank and world size from the launcher
    dist.all_reduce(t, op=dist.ReduceOp.AVG)  # in place, the same values on every rank

Underneath is an existing engine, not a protocol of our own: MPI (through ``mpi4py``)
moves host (NumPy) arrays, and NCCL (through CuPy's ``cupy.cuda.nccl``) moves CUDA
arrays between GPUs without a host copy. Both come with ``pip install -e
".[distributed]"`` (the ``mpich`` wheel brings ``mpiexec``); ``import tensorgrad``
never needs them. Every collective works in place on the tensor's array in one call
to the library, and with ``async_op=True`` returns a handle whose ``wait()`` finishes it.
"""

from .collectives import (
    ReduceOp,
    Work,
    all_gather,
    all_gather_into_tensor,
    all_gather_object,
    all_reduce,
    barrier,
    broadcast,
    broadcast_object_list,
    reduce_scatter,
)
from .process_group import (
    destroy_process_group,
    get_node_local_rank,
    get_rank,
    get_world_size,
    init_process_group,
    is_available,
    is_initialized,
    is_nccl_available,
    new_group,
)

__all__ = [
    "ReduceOp", "Work", "all_gather", "all_gather_into_tensor", "all_gather_object",
    "all_reduce", "barrier", "broadcast", "broadcast_object_list", "destroy_process_group",
    "get_node_local_rank", "get_rank", "get_world_size", "init_process_group", "is_available",
    "is_initialized", "is_nccl_available", "new_group", "reduce_scatter",
]
