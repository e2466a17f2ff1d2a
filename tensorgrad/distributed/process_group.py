"""The default process group: who this process is in the job, and how it talks.

``init_process_group`` reads rank and world size from the launcher through MPI
(``mpiexec``, ``srun`` ...: MPI's own rendezvous, so no address or port to set) and
keeps a private duplicate of ``COMM_WORLD``, so our traffic never mixes with a user's
own MPI calls. NCCL is added lazily: its communicator is made by the first collective
on a CUDA tensor (every rank reaches it together, as a collective must), on that
tensor's GPU.

A rank that dies with an exception must not leave the others waiting in a collective
forever: under a multi-rank job an exception hook prints the error and aborts the
whole job (``MPI_Abort``), the way ``python -m mpi4py`` runs a script.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from typing import Any

from .. import backend

INSTALL_HINT = 'pip install -e ".[distributed]"'
# what launchers put in the environment of each process, per launcher
_LOCAL_RANK_VARIABLES = ("LOCAL_RANK", "MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK",
                         "SLURM_LOCALID", "PMI_LOCAL_RANK")


class ProcessGroup:
    """The ranks of the job and the communicators that connect them."""

    def __init__(self, mpi: Any, comm: Any, want_nccl: bool):
        self.MPI = mpi  # the mpi4py.MPI module (imported only once a group is made)
        self.comm = comm
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()
        self.want_nccl = want_nccl
        self.nccl = None  # a .nccl.NcclCommunicator, made on first use
        self.previous_excepthook = None

    def free(self) -> None:
        if self.nccl is not None:
            self.nccl.destroy()
            self.nccl = None
        if self.comm is not None:
            self.comm.Free()
            self.comm = None

    def nccl_for(self, array) -> Any:
        """The NCCL communicator for a CUDA array, or None to go through MPI."""
        if not self.want_nccl:
            return None
        if self.nccl is None:
            from .nccl import NcclCommunicator

            self.nccl = NcclCommunicator(self.comm, array.device.id)
        return self.nccl


_group: ProcessGroup | None = None


def is_available() -> bool:
    """Whether ``init_process_group`` can work here: mpi4py is installed."""
    return importlib.util.find_spec("mpi4py") is not None


def is_nccl_available() -> bool:
    """Whether CUDA tensors can use NCCL: CuPy, a GPU and the NCCL library are there."""
    from .nccl import nccl_module

    return nccl_module() is not None


def is_initialized() -> bool:
    return _group is not None


def default_group() -> ProcessGroup:
    if _group is None:
        raise RuntimeError("Default process group has not been initialized, please make sure "
                           "to call init_process_group.")
    return _group


def init_process_group(backend: str | None = None, world_size: int = -1,
                       rank: int = -1) -> None:
    """Join the job started by the launcher (``mpiexec -n N python script.py``).

    ``backend``: None or ``"mpi"`` sets up MPI and adds NCCL for CUDA tensors when CuPy,
    a GPU and NCCL are available; ``"nccl"`` requires NCCL. ``world_size`` and ``rank``,
    when given, must agree with the launcher's (a check, as they cannot be chosen here).
    Run without a launcher, the process is a job of one rank.
    """
    global _group
    if _group is not None:
        raise RuntimeError("trying to initialize the default process group twice!")
    name = "mpi" if backend is None else str(backend).lower()
    if name not in ("mpi", "nccl"):
        raise ValueError(f"init_process_group: unknown backend {backend!r}; tensorgrad has "
                         f"'mpi' (host arrays, with NCCL added for CUDA ones) and 'nccl'")
    if not is_available():
        raise RuntimeError(f"init_process_group: tensorgrad.distributed needs mpi4py and an "
                           f"MPI library: {INSTALL_HINT}")
    nccl_ok = is_nccl_available()
    if name == "nccl" and not nccl_ok:
        reason = _backend_reason()
        raise RuntimeError(f"init_process_group(backend='nccl'): NCCL is not available "
                           f"({reason}); pip install -e \".[cuda12]\" brings it, or use "
                           f"backend='mpi'")
    from mpi4py import MPI

    world = MPI.COMM_WORLD
    for what, given, actual in (("world_size", world_size, world.Get_size()),
                                ("rank", rank, world.Get_rank())):
        if given != -1 and given != actual:
            raise ValueError(f"init_process_group: {what}={given}, but the launcher started "
                             f"this process with {what} {actual}")
    group = ProcessGroup(MPI, world.Dup(), want_nccl=nccl_ok)
    if group.size > 1:
        group.previous_excepthook = sys.excepthook
        sys.excepthook = _abort_job
    _group = group


def new_group(ranks: list[int] | None = None) -> ProcessGroup:
    """A group of all ranks with a communicator of its own: its collectives are ordered
    apart from the default group's (DistributedDataParallel reduces gradients in one, so
    its non-blocking bucket reductions never interleave with SyncBatchNorm's)."""
    group = default_group()
    if ranks is not None and sorted(ranks) != list(range(group.size)):
        raise ValueError(f"new_group: only groups of all {group.size} ranks are supported, "
                         f"got ranks={ranks}")
    return ProcessGroup(group.MPI, group.comm.Dup(), group.want_nccl)


def destroy_process_group() -> None:
    """Leave the group: free its communicators (MPI itself is finalized at exit)."""
    global _group
    group = default_group()
    if group.previous_excepthook is not None and sys.excepthook is _abort_job:
        sys.excepthook = group.previous_excepthook
    group.free()
    _group = None


def get_rank(group: ProcessGroup | None = None) -> int:
    """This process's rank, 0 .. world_size - 1."""
    return (group or default_group()).rank


def get_world_size(group: ProcessGroup | None = None) -> int:
    return (group or default_group()).size


def get_node_local_rank(fallback_rank: int | None = None) -> int:
    """This process's rank among the processes of its machine (which GPU to take).

    From the group when there is one (the ranks that share memory), else from the
    launcher's environment (``LOCAL_RANK``, MPICH's ``MPI_LOCALRANKID``, Open MPI's,
    Slurm's), else ``fallback_rank``."""
    if _group is not None:
        local = _group.comm.Split_type(_group.MPI.COMM_TYPE_SHARED)
        try:
            return local.Get_rank()
        finally:
            local.Free()
    for variable in _LOCAL_RANK_VARIABLES:
        if variable in os.environ:
            return int(os.environ[variable])
    if fallback_rank is not None:
        return int(fallback_rank)
    raise RuntimeError("get_node_local_rank: no launcher variable found ("
                       + ", ".join(_LOCAL_RANK_VARIABLES) + ") and no fallback_rank given")


def _backend_reason() -> str:
    return backend.cuda_unavailable_reason() or "CuPy has no NCCL library (cupy.cuda.nccl)"


def _abort_job(exc_type, exc, tb) -> None:
    """sys.excepthook under a multi-rank job: the usual traceback, then end every rank."""
    group = _group
    previous = group.previous_excepthook if group is not None else sys.__excepthook__
    (previous or sys.__excepthook__)(exc_type, exc, tb)
    if group is None:
        return
    sys.stderr.write(f"tensorgrad.distributed: rank {group.rank} of {group.size} failed "
                     f"with {exc_type.__name__}; aborting the job\n")
    sys.stderr.flush()
    sys.stdout.flush()
    # the launcher forwards output through its own proxies and kills every rank on
    # Abort: a moment first, so that the error message reaches the user
    time.sleep(0.5)
    group.MPI.COMM_WORLD.Abort(1)
