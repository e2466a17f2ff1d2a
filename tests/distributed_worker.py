"""Run by tests/test_distributed.py under ``mpiexec -n N``: the checks that need several
processes. Each check prints ``rank R ok NAME``; a failed one raises, and the exception
hook of tensorgrad.distributed ends the whole job (a non-zero exit).

    mpiexec -n 3 python tests/distributed_worker.py all          # CPU tensors
    PYTHONPATH=tests/standin mpiexec -n 2 python tests/distributed_worker.py all+device
    mpiexec -n 1 python tests/distributed_worker.py device       # a GPU machine: NCCL
    mpiexec -n 2 python tests/distributed_worker.py crash        # rank 1 raises
    PYTHONPATH=tests/standin python tests/distributed_worker.py nccl-calls  # no GPU needed
"""

from __future__ import annotations

import faulthandler
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import nn  # noqa: E402
import tensorgrad as tg  # noqa: E402
import tensorgrad.distributed as dist  # noqa: E402
import tensorgrad.functional as F  # noqa: E402
from nn.parallel import DistributedDataParallel as DDP  # noqa: E402

RTOL = 1e-12  # float64 equivalence: one process vs N, up to summation order


def ok(name: str) -> None:
    print(f"rank {dist.get_rank()} ok {name}", flush=True)


def close(actual, expected, what: str, rtol: float = RTOL, atol: float = 1e-13) -> None:
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=what)


# ------------------------------------------------------------------ collectives


def rank_data(r: int, dtype=np.float64) -> np.ndarray:
    return np.random.default_rng(r).standard_normal((3, 4)).astype(dtype)


def check_collectives(device: str = "cpu") -> None:
    """Every collective against NumPy, on ``device``'s tensors."""
    on = f" [{device}]" if device != "cpu" else ""
    rank, n = dist.get_rank(), dist.get_world_size()
    assert n == int(os.environ.get("PMI_SIZE", n)) and rank == int(os.environ.get("PMI_RANK", 0))
    every = np.stack([rank_data(r) for r in range(n)])
    ops = [(dist.ReduceOp.SUM, every.sum(0)), (dist.ReduceOp.AVG, every.mean(0)),
           (dist.ReduceOp.MAX, every.max(0)), (dist.ReduceOp.MIN, every.min(0)),
           (dist.ReduceOp.PRODUCT, every.prod(0))]
    for op, expected in ops:
        for async_op in (False, True):
            t = tg.tensor(rank_data(rank), device=device)
            version = t._version
            work = dist.all_reduce(t, op=op, async_op=async_op)
            if async_op:
                assert isinstance(work, dist.Work)
                work.wait()
            else:
                assert work is None
            close(t.numpy(), expected, f"all_reduce {op} async={async_op}")
            assert t._version == version + 1, "all_reduce must bump the version"
    t32 = tg.tensor(rank_data(rank, np.float32), device=device)
    dist.all_reduce(t32, op=dist.ReduceOp.AVG)
    assert t32.dtype == np.float32
    close(t32.numpy(), every.astype(np.float32).mean(0), "float32 avg", rtol=1e-5, atol=1e-6)
    ints = tg.tensor(np.arange(5, dtype=np.int64) * (rank + 1), device=device)
    dist.all_reduce(ints)
    assert ints.tolist() == (np.arange(5) * sum(range(1, n + 1))).tolist()
    if device == "cpu" or not dist.is_nccl_available():  # NCCL reduces no booleans
        flags = tg.tensor(np.array([rank == 0, True, False]), device=device)
        dist.all_reduce(flags, op=dist.ReduceOp.MAX)
        assert flags.tolist() == [True, True, False]
    try:
        dist.all_reduce(tg.tensor(np.arange(3), device=device), op=dist.ReduceOp.AVG)
        raise AssertionError("AVG of an integer tensor must raise")
    except TypeError as e:
        assert "AVG" in str(e)
    # a non-contiguous view: reduced through a contiguous copy, written back
    base = tg.tensor(rank_data(rank), device=device)
    view = base.T
    assert not view.data.flags.c_contiguous
    dist.all_reduce(view)
    close(base.numpy(), every.sum(0), "all_reduce of a transposed view")
    ok("all_reduce" + on)

    t = tg.tensor(rank_data(rank), device=device)
    dist.broadcast(t, src=n - 1)
    close(t.numpy(), every[n - 1], "broadcast from the last rank")
    t = tg.tensor(rank_data(rank), device=device)
    dist.broadcast(t, src=0, async_op=True).wait()
    close(t.numpy(), every[0], "async broadcast")
    ok("broadcast" + on)

    for async_op in (False, True):
        out = [tg.zeros(3, 4, dtype=tg.float64, device=device) for _ in range(n)]
        work = dist.all_gather(out, tg.tensor(rank_data(rank), device=device),
                              async_op=async_op)
        if async_op:
            work.wait()
        for r in range(n):
            close(out[r].numpy(), every[r], f"all_gather[{r}]")
    whole = tg.zeros(n, 3, 4, dtype=tg.float64, device=device)
    dist.all_gather_into_tensor(whole, tg.tensor(rank_data(rank), device=device))
    close(whole.numpy(), every, "all_gather_into_tensor")
    ok("all_gather" + on)

    for op, combine in ((dist.ReduceOp.SUM, np.sum), (dist.ReduceOp.AVG, np.mean)):
        # rank s sends rank_data(s) + i to rank i
        inputs = [tg.tensor(rank_data(rank) + i, device=device) for i in range(n)]
        out = tg.zeros(3, 4, dtype=tg.float64, device=device)
        dist.reduce_scatter(out, inputs, op=op)
        close(out.numpy(), combine(every + rank, axis=0), f"reduce_scatter {op}")
    ok("reduce_scatter" + on)

    objects = [None] * n
    dist.all_gather_object(objects, {"rank": rank, "name": f"r{rank}"})
    assert objects == [{"rank": r, "name": f"r{r}"} for r in range(n)], objects
    items = [rank, "from", rank * 10]
    dist.broadcast_object_list(items, src=n - 1)
    assert items == [n - 1, "from", (n - 1) * 10], items
    dist.barrier()
    dist.barrier(async_op=True).wait()
    ok("objects")


# ------------------------------------------------------------------ SyncBatchNorm


def check_sync_batchnorm() -> None:
    """Forward, input gradient and running statistics of SyncBatchNorm on a shard equal
    BatchNorm2d's on the whole batch (a loss summed over all ranks)."""
    rank, n = dist.get_rank(), dist.get_world_size()
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2 * n, 3, 4, 5)) * 0.5 + 40.0  # |mean| >> std: stability
    w = rng.standard_normal(x.shape)
    gamma, beta = rng.standard_normal(3), rng.standard_normal(3)
    lo, hi = 2 * rank, 2 * rank + 2

    ref = nn.BatchNorm2d(3).double()
    sync = nn.SyncBatchNorm(3).double()
    for m in (ref, sync):
        m.weight.data[...] = gamma
        m.bias.data[...] = beta
    xr = tg.tensor(x, requires_grad=True)
    yr = ref(xr)
    (yr * tg.tensor(w)).sum().backward()
    xs = tg.tensor(x[lo:hi], requires_grad=True)
    ys = sync(xs)
    (ys * tg.tensor(w[lo:hi])).sum().backward()
    close(ys.numpy(), yr.numpy()[lo:hi], "SyncBatchNorm forward", rtol=1e-10, atol=1e-11)
    close(xs.grad.numpy(), xr.grad.numpy()[lo:hi], "SyncBatchNorm dx", rtol=1e-9, atol=1e-10)
    close(sync.running_mean.numpy(), ref.running_mean.numpy(), "running_mean")
    close(sync.running_var.numpy(), ref.running_var.numpy(), "running_var")
    # dγ, dβ are this rank's sums; over the ranks they add up to the whole batch's
    for name in ("weight", "bias"):
        total = getattr(sync, name).grad.clone()
        dist.all_reduce(total)
        close(total.numpy(), getattr(ref, name).grad.numpy(), f"sum of d{name}", rtol=1e-10)
    assert int(sync.num_batches_tracked.item()) == 1
    sync.eval()
    close(sync(xs).numpy(), ref.eval()(xr).numpy()[lo:hi], "eval mode uses running stats")
    ok("sync_batchnorm")


# ------------------------------------------------------------------ DDP equivalence

B, STEPS = 12, 4


def make_model(seed: int) -> nn.Module:
    tg.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
        nn.Conv2d(4, 5, 3, padding=1, bias=False), nn.BatchNorm2d(5), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(5, 3),
    ).double()


def batches():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((STEPS, B, 2, 5, 5)) + 3.0
    y = rng.integers(0, 3, size=(STEPS, B))
    return x, y


def train_reference(micro: int) -> nn.Module:
    """One process, the whole batch of B (in ``micro`` accumulated micro-batches)."""
    model = make_model(0)
    opt = nn.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, y = batches()
    for s in range(STEPS):
        opt.zero_grad()
        for xm, ym in zip(np.split(x[s], micro), np.split(y[s], micro)):
            F.cross_entropy(model(tg.tensor(xm)), tg.tensor(ym)).backward()
        opt.step()
    return model


def train_distributed(micro: int, bucket_cap_mb: float,
                      device: str = "cpu") -> tuple[nn.Module, DDP]:
    """N ranks, each its 1/N of every (micro-)batch, SyncBatchNorm; different initial
    weights on every rank (DDP's broadcast makes them rank 0's)."""
    rank, n = dist.get_rank(), dist.get_world_size()
    model = nn.SyncBatchNorm.convert_sync_batchnorm(make_model(0 if rank == 0 else 100 + rank))
    model.to(device)
    ddp = DDP(model, device_ids=None if device == "cpu" else [device],
              bucket_cap_mb=bucket_cap_mb)
    opt = nn.optim.SGD(ddp.parameters(), lr=0.1, momentum=0.9)
    x, y = batches()
    for s in range(STEPS):
        opt.zero_grad()
        parts = list(zip(np.split(x[s], micro), np.split(y[s], micro)))
        for i, (xm, ym) in enumerate(parts):
            xr, yr = np.split(xm, n)[rank], np.split(ym, n)[rank]
            if i < len(parts) - 1:
                with ddp.no_sync():
                    F.cross_entropy(ddp(tg.tensor(xr, device=device)),
                                    tg.tensor(yr, device=device)).backward()
            else:
                F.cross_entropy(ddp(tg.tensor(xr, device=device)),
                                tg.tensor(yr, device=device)).backward()
        opt.step()
    return model, ddp


def check_equivalence(device: str = "cpu") -> None:
    configs = [("default buckets", 1, 25), ("tiny buckets", 1, 1e-6),
               ("no_sync accumulation", 2, 25)]
    for name, micro, cap in configs if device == "cpu" else configs[1:2]:
        reference = train_reference(micro).state_dict()  # one process, on the CPU
        model, ddp = train_distributed(micro, cap, device)
        if cap < 1:
            assert len(ddp._buckets) == len(list(model.parameters())), "one bucket per param"
        state = model.state_dict()
        assert list(state) == list(reference)
        worst = 0.0
        for key, value in reference.items():
            a, b = state[key].numpy().astype(np.float64), value.numpy().astype(np.float64)
            close(a, b, f"{name}: {key}")
            worst = max(worst, float(np.max(np.abs(a - b) / (np.abs(b) + 1e-300))))
        assert list(ddp.state_dict())[0].startswith("module."), list(ddp.state_dict())[:2]
        on = f" [{device}]" if device != "cpu" else ""
        ok(f"equivalence {name}{on} (worst relative difference {worst:.1e})")


# ------------------------------------------------------------------ DDP behaviour


class TwoHeads(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(3, 2)
        self.b = nn.Linear(3, 2)

    def forward(self, x, use_b: bool):
        y = self.a(x)
        return y + self.b(x) if use_b else y


def check_unused_parameters() -> None:
    rank, n = dist.get_rank(), dist.get_world_size()
    x = tg.tensor(np.random.default_rng(rank).standard_normal((4, 3)))
    tg.manual_seed(1)
    ddp = DDP(TwoHeads().double())
    try:
        ddp(x, use_b=rank == 0)
        raise AssertionError("a parameter unused on some rank must raise")
    except RuntimeError as e:
        message = str(e)
        assert "'b.weight'" in message and "rank 1" in message and "find_unused" in message
    ok("unused parameters raise on every rank")

    tg.manual_seed(1)
    ddp = DDP(TwoHeads().double(), find_unused_parameters=True)
    plain = TwoHeads().double()
    plain.load_state_dict(ddp.module.state_dict())
    for _step in range(2):  # twice: the second step reuses the per-step state
        ddp.zero_grad()
        plain.zero_grad()
        use_b = rank == 0
        (ddp(x, use_b=use_b) * (rank + 1)).sum().backward()
        (plain(x, use_b=use_b) * (rank + 1)).sum().backward()
        synced = dict(ddp.module.named_parameters())
        for name, p in plain.named_parameters():
            local = p.grad if p.grad is not None else tg.zeros_like(p)
            gathered = [tg.zeros_like(local) for _ in range(n)]
            dist.all_gather(gathered, local)
            expected = np.mean([g.numpy() for g in gathered], axis=0)
            close(synced[name].grad.numpy(), expected, f"unused-parameter grad {name}")
    ddp.zero_grad()
    ddp(x, use_b=False).sum().backward()
    assert ddp.module.b.weight.grad is None, "unused on every rank: .grad stays None"
    assert ddp.module.a.weight.grad is not None
    ok("find_unused_parameters=True")


def check_mismatched_models() -> None:
    rank = dist.get_rank()
    model = nn.Sequential(nn.Linear(3, 2 if rank == 0 else 4))
    try:
        DDP(model)
        raise AssertionError("different models must raise")
    except RuntimeError as e:
        assert "'0.weight'" in str(e) and "rank 0" in str(e), str(e)
    ok("mismatched models raise on every rank")


def check_buffers_and_state() -> None:
    rank, n = dist.get_rank(), dist.get_world_size()
    model = nn.SyncBatchNorm.convert_sync_batchnorm(make_model(rank))
    ddp = DDP(model)
    model[1].running_mean.data[...] = rank  # drifted apart: the next forward resets them
    x = tg.tensor(np.random.default_rng(rank).standard_normal((2, 2, 5, 5)))
    ddp(x)
    means = [tg.zeros(4, dtype=tg.float64) for _ in range(n)]
    dist.all_gather(means, model[1].running_mean)
    for m in means[1:]:
        close(m.numpy(), means[0].numpy(), "running_mean equal after a forward")
    assert all(k.startswith("module.") for k in ddp.state_dict())
    assert list(ddp.module.state_dict()) == [k[len("module."):] for k in ddp.state_dict()]
    ddp.eval()
    with tg.no_grad():  # evaluation on one rank alone: no collective, so no hang
        if rank == 0:
            ddp(x)
    dist.barrier()
    ok("buffers broadcast and state_dict")


def check_post_accumulate_hook_order() -> None:
    """The hook runs once per backward, after .grad holds the accumulated value."""
    seen = []
    p = tg.tensor(np.ones(3), requires_grad=True)
    p.register_post_accumulate_grad_hook(lambda t: seen.append(t.grad.numpy().copy()))
    (p * 2).sum().backward()
    (p * 3).sum().backward()
    assert [s.tolist() for s in seen] == [[2.0] * 3, [5.0] * 3], seen
    ok("post-accumulate hook")


def check_nccl_calls() -> None:
    """Without a GPU: the NCCL wrapper against a recording stand-in of ``cupy.cuda.nccl``
    (run alone, with tests/standin as CuPy): every call has the arguments of CuPy's
    documented signatures (pointers, element count, NCCL dtype and op, stream), the
    unique id goes from rank 0 to the communicator, and a non-blocking all-reduce runs
    on the side stream, fenced by events both ways."""
    import types

    from tensorgrad import backend
    from tensorgrad.distributed import nccl as nccl_wrapper
    from tensorgrad.distributed import process_group

    calls = []
    cuda = backend._cupy.cuda

    class Stream:
        ptr = 7

        def wait_event(self, event):
            calls.append(("wait_event", event.name))

        def __enter__(self):
            calls.append(("side stream",))

        def __exit__(self, *exc):
            calls.append(("current stream",))

    class Event:
        count = 0

        def __init__(self):
            Event.count += 1
            self.name = f"event{Event.count}"

        def record(self, stream=None):
            calls.append(("record", self.name))

    class Communicator:
        def __init__(self, ndev, unique_id, rank):
            calls.append(("init", ndev, unique_id, rank))

        def __getattr__(self, name):
            return lambda *args: calls.append((name,) + args)

    names = ["NCCL_INT8", "NCCL_UINT8", "NCCL_INT32", "NCCL_UINT32", "NCCL_INT64",
             "NCCL_UINT64", "NCCL_FLOAT16", "NCCL_FLOAT32", "NCCL_FLOAT64", "NCCL_SUM",
             "NCCL_PROD", "NCCL_MAX", "NCCL_MIN"]
    fake = types.SimpleNamespace(available=True, get_unique_id=lambda: (1, 2, 3),
                                 NcclCommunicator=Communicator,
                                 **{name: 100 + i for i, name in enumerate(names)})
    cuda.Stream, cuda.Event, cuda.get_current_stream = (lambda non_blocking=False: Stream(),
                                                        Event, Stream)
    nccl_wrapper.nccl_module = lambda: fake
    dist.init_process_group()
    process_group.default_group().want_nccl = True  # as if CuPy had found NCCL

    t = tg.tensor(np.arange(6.0).reshape(2, 3), device="cuda")
    ptr = t.data.data.ptr
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    assert calls[:2] == [("init", 1, (1, 2, 3), 0),
                         ("allReduce", ptr, ptr, 6, fake.NCCL_FLOAT64, fake.NCCL_MAX, 7)], calls
    del calls[:]
    dist.all_reduce(t, op=dist.ReduceOp.AVG, async_op=True).wait()
    assert [c[0] for c in calls] == ["record", "wait_event", "side stream", "allReduce",
                                     "current stream", "record", "wait_event"], calls
    ready, done = calls[0][1], calls[5][1]
    assert calls[1] == ("wait_event", ready) and calls[6] == ("wait_event", done)
    assert calls[3][3:6] == (6, fake.NCCL_FLOAT64, fake.NCCL_SUM)  # AVG: sum, then / size
    del calls[:]
    f32 = tg.zeros(4, device="cuda")
    dist.broadcast(f32, src=0)
    out = tg.zeros(1, 4, device="cuda")
    dist.all_gather_into_tensor(out, f32)
    dist.reduce_scatter(f32, [tg.ones(4, device="cuda")])
    p32, pout = f32.data.data.ptr, out.data.data.ptr
    assert calls[0] == ("broadcast", p32, p32, 4, fake.NCCL_FLOAT32, 0, 7), calls
    assert calls[1] == ("allGather", p32, pout, 4, fake.NCCL_FLOAT32, 7), calls
    assert calls[2][0] == "reduceScatter" and calls[2][2:] == (p32, 4, fake.NCCL_FLOAT32,
                                                                fake.NCCL_SUM, 7), calls
    try:
        dist.all_reduce(tg.tensor(np.array([True]), device="cuda"))
        raise AssertionError("NCCL has no boolean reduction: must raise")
    except TypeError as e:
        assert "bool" in str(e)
    ok("nccl calls")
    dist.destroy_process_group()


def main(mode: str) -> None:
    if mode == "nccl-calls":
        check_nccl_calls()
        return
    dist.init_process_group()
    if mode == "crash":
        dist.barrier()
        if dist.get_rank() == 1:
            raise ValueError("planted failure on rank 1")
        dist.all_reduce(tg.zeros(3))  # would wait for rank 1 forever without the abort
        print("rank 0 passed an all_reduce that rank 1 never joined", flush=True)
        return
    if mode == "device":  # on a GPU machine: one rank, NCCL
        check_device()
        dist.destroy_process_group()
        return
    # a hang shows where it is (the test's timeout would only say that it happened)
    faulthandler.dump_traceback_later(45, exit=True)
    check_post_accumulate_hook_order()
    check_collectives()
    check_sync_batchnorm()
    check_equivalence()
    check_unused_parameters()
    check_mismatched_models()
    check_buffers_and_state()
    if mode == "all+device":  # with tests/standin: CUDA tensors through host copies
        check_device()
    dist.destroy_process_group()


def check_device() -> None:
    """Collectives and DDP + SyncBatchNorm on CUDA tensors: through NCCL where it is
    there, else through host copies and MPI."""
    print(f"rank {dist.get_rank()} nccl available: {dist.is_nccl_available()}", flush=True)
    device = f"cuda:{dist.get_node_local_rank() % tg.cuda.device_count()}"
    check_collectives(device)
    check_equivalence(device)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "all")
