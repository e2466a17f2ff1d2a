"""tensorgrad.distributed, DistributedDataParallel, SyncBatchNorm, DistributedSampler.

The multi-process checks run under ``mpiexec -n 2`` and ``-n 3`` as subprocesses
(tests/distributed_worker.py, many checks per launch), each with a timeout, so a hang
fails the test instead of stalling the suite. The rest runs in this process, which
never initialises MPI.
"""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import time
import types
from collections import Counter
from importlib import util as importlib_util

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nn
import tensorgrad as tg
import tensorgrad.distributed as dist
from tensorgrad.data import DistributedSampler

pytestmark = pytest.mark.cpu_only  # MPI on host tensors; NCCL (CUDA tensors) needs GPUs

ROOT = pathlib.Path(__file__).resolve().parent.parent
WORKER = ROOT / "tests" / "distributed_worker.py"
CHECKS = [
    "post-accumulate hook", "all_reduce", "broadcast", "all_gather", "reduce_scatter",
    "objects", "sync_batchnorm", "equivalence default buckets", "equivalence tiny buckets",
    "equivalence no_sync accumulation", "unused parameters raise on every rank",
    "find_unused_parameters=True", "mismatched models raise on every rank",
    "buffers broadcast and state_dict",
]
DEVICE_CHECKS = ["all_reduce", "broadcast", "all_gather", "reduce_scatter",
                 "equivalence tiny buckets"]


def _mpiexec() -> str | None:
    beside = pathlib.Path(sys.executable).parent / "mpiexec"  # the mpich wheel's
    return str(beside) if beside.exists() else shutil.which("mpiexec")


def _require_mpi() -> str:
    """mpiexec, which the dev extras bring (mpi4py and the mpich wheel): without them
    the environment is broken, and the test fails rather than skip."""
    mpiexec = _mpiexec()
    if mpiexec is None or importlib_util.find_spec("mpi4py") is None:
        pytest.fail('mpi4py or mpiexec is missing: pip install -e ".[dev]" brings both')
    return mpiexec


def run_mpi(n: int, mode: str, timeout: float = 60,
            pythonpath: str | None = None) -> tuple[int, str, float]:
    """(exit status, stdout + stderr, seconds) of the worker under ``mpiexec -n n``; on
    timeout the whole process group is killed and the test fails."""
    mpiexec = _require_mpi()
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    if pythonpath is not None:
        env["PYTHONPATH"] = pythonpath
    start = time.perf_counter()
    proc = subprocess.Popen([mpiexec, "-n", str(n), sys.executable, str(WORKER), mode],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env, cwd=ROOT, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"mpiexec -n {n} worker {mode} hung for {timeout} s:\n{out}")
    return proc.returncode, out, time.perf_counter() - start


@pytest.mark.parametrize("n, standin", [(2, True), (3, False)], ids=["2-ranks+cuda", "3-ranks"])
def test_multi_process_checks(n, standin):
    """Every check on CPU tensors; with 2 ranks also on CUDA tensors of the NumPy-backed
    CuPy stand-in (tests/standin: strict about host/device mixing), which go through host
    copies and MPI, as on a GPU machine without NCCL."""
    path = str(ROOT / "tests" / "standin") if standin else None
    code, out, _ = run_mpi(n, "all+device" if standin else "all", pythonpath=path)
    assert code == 0, out
    device_checks = [f"{name} [cuda:0]" for name in DEVICE_CHECKS] if standin else []
    for name in CHECKS + device_checks:
        for rank in range(n):
            assert f"rank {rank} ok {name}" in out, f"missing 'rank {rank} ok {name}':\n{out}"
    # the equivalence checks hold to ~1e-12 relative (see the worker): report the worst
    worst = [float(x) for x in re.findall(r"worst relative difference ([0-9.e+-]+)", out)]
    assert len(worst) == (3 + bool(standin)) * n and max(worst) < 1e-12


def test_nccl_calls_follow_cupys_signatures():
    """No GPU here: the NCCL wrapper against a recording stand-in of cupy.cuda.nccl
    (one process, tests/standin as CuPy); the real thing: tests/test_distributed_gpu.py."""
    _require_mpi()
    env = dict(os.environ, PYTHONPATH=str(ROOT / "tests" / "standin"), OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, str(WORKER), "nccl-calls"], capture_output=True,
                         text=True, env=env, cwd=ROOT, timeout=60)
    assert out.returncode == 0 and "rank 0 ok nccl calls" in out.stdout, out.stdout + out.stderr


def test_a_failing_rank_ends_the_job_within_seconds():
    code, out, seconds = run_mpi(2, "crash", timeout=30)
    assert code != 0, out
    assert "ValueError: planted failure on rank 1" in out
    assert "aborting the job" in out
    assert "rank 0 passed" not in out
    assert seconds < 15, f"the job took {seconds:.1f} s to end"


# ------------------------------------------------------------------ one process


def test_import_and_everything_else_work_without_mpi4py():
    code = ("import sys; sys.modules['mpi4py'] = None\n"
            "import tensorgrad as tg, nn, tensorgrad.distributed as dist\n"
            "m = nn.SyncBatchNorm(2); y = m(tg.randn(4, 2, 3, 3)); print(dist.is_available())\n"
            "try:\n    dist.init_process_group()\n"
            "except RuntimeError as e:\n    print('raised:', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == "False"
    assert 'raised:' in out.stdout and 'pip install -e ".[distributed]"' in out.stdout


def test_only_the_distributed_packages_import_mpi4py():
    allowed = {ROOT / "tensorgrad" / "distributed", ROOT / "nn" / "parallel"}
    offenders = []
    for folder in ("tensorgrad", "nn", "models", "examples", "benchmarks"):
        for path in (ROOT / folder).rglob("*.py"):
            if any(a in path.parents for a in allowed):
                continue
            if re.search(r"^\s*(import mpi4py|from mpi4py)", path.read_text(), re.M):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_queries_before_init_raise():
    assert not dist.is_initialized()
    with pytest.raises(RuntimeError, match="init_process_group"):
        dist.get_rank()
    with pytest.raises(RuntimeError, match="init_process_group"):
        dist.all_reduce(tg.zeros(3))
    with pytest.raises(RuntimeError, match="init_process_group"):
        nn.parallel.DistributedDataParallel(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="backend"):
        dist.init_process_group("gloo")
    assert not dist.is_initialized()


def test_sync_batchnorm_alone_is_batchnorm():
    """Without a process group of several ranks it computes what BatchNorm2d does."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3, 2, 2))
    ref, sync = nn.BatchNorm2d(3).double(), nn.SyncBatchNorm(3).double()
    xr, xs = tg.tensor(x, requires_grad=True), tg.tensor(x, requires_grad=True)
    ref(xr).square().sum().backward()
    sync(xs).square().sum().backward()
    np.testing.assert_allclose(xs.grad.numpy(), xr.grad.numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(sync.running_var.numpy(), ref.running_var.numpy(), rtol=1e-14)
    with pytest.raises(ValueError, match="3 channels"):
        sync(tg.zeros(2, 4, 2, 2, dtype=tg.float64))


def test_convert_sync_batchnorm_shares_the_tensors():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2, momentum=0.3),
                          nn.Sequential(nn.BatchNorm1d(4, affine=False)))
    model.eval()
    bn, inner = model[1], model[2][0]
    converted = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    assert converted is model
    assert type(model[1]) is nn.SyncBatchNorm and type(model[2][0]) is nn.SyncBatchNorm
    assert model[1].weight is bn.weight and model[1].running_mean is bn.running_mean
    assert model[1].momentum == 0.3 and not model[1].training
    assert model[2][0].weight is None and model[2][0].running_var is inner.running_var
    assert list(model.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias",
                                        "1.running_mean", "1.running_var",
                                        "1.num_batches_tracked", "2.0.running_mean",
                                        "2.0.running_var", "2.0.num_batches_tracked"]
    alone = nn.SyncBatchNorm.convert_sync_batchnorm(nn.BatchNorm2d(3))
    assert type(alone) is nn.SyncBatchNorm


# ------------------------------------------------------------------ the engine's hook


def test_post_accumulate_grad_hook_sees_the_accumulated_grad():
    p = tg.tensor([1.0, 2.0], requires_grad=True)
    seen = []
    handle = p.register_post_accumulate_grad_hook(lambda t: seen.append((t is p,
                                                                         t.grad.tolist())))
    (p * p).sum().backward()      # grad 2p
    (p * 3).sum().backward()      # accumulated: 2p + 3
    assert seen == [(True, [2.0, 4.0]), (True, [5.0, 7.0])]
    handle.remove()
    p.sum().backward()
    assert len(seen) == 2
    # used twice in one graph: the hook runs once, after the sum of both uses
    q = tg.tensor([1.0], requires_grad=True)
    calls = []
    q.register_post_accumulate_grad_hook(lambda t: calls.append(t.grad.item()))
    (q * 2 + q * 5).sum().backward()
    assert calls == [7.0]


def test_post_accumulate_grad_hook_only_on_leaves_that_require_grad():
    x = tg.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="non-leaf"):
        (x * 2).register_post_accumulate_grad_hook(lambda t: None)
    with pytest.raises(RuntimeError, match="doesn't require grad"):
        tg.tensor([1.0]).register_post_accumulate_grad_hook(lambda t: None)


# ------------------------------------------------------------------ DistributedSampler


def test_sampler_pads_and_drops_as_pytorch():
    # PyTorch: pad by repeating the list's start, then every num_replicas-th from rank
    shards = [list(DistributedSampler(range(10), 3, r, shuffle=False)) for r in range(3)]
    assert shards == [[0, 3, 6, 9], [1, 4, 7, 0], [2, 5, 8, 1]]
    shards = [list(DistributedSampler(range(10), 3, r, shuffle=False, drop_last=True))
              for r in range(3)]
    assert shards == [[0, 3, 6], [1, 4, 7], [2, 5, 8]]
    # fewer samples than the padding needs: the list is repeated whole
    assert [list(DistributedSampler(range(2), 5, r, shuffle=False)) for r in range(5)] == \
        [[0], [1], [0], [1], [0]]
    assert len(DistributedSampler(range(10), 4, 0, drop_last=True)) == 2
    assert len(DistributedSampler(range(10), 4, 0)) == 3


@given(size=st.integers(0, 40), replicas=st.integers(1, 6), seed=st.integers(0, 2**31),
       epoch=st.integers(0, 5), drop_last=st.booleans())
def test_sampler_shards_are_disjoint_and_cover(size, replicas, seed, epoch, drop_last):
    samplers = [DistributedSampler(range(size), replicas, r, seed=seed, drop_last=drop_last)
                for r in range(replicas)]
    for s in samplers:
        s.set_epoch(epoch)
    shards = [list(s) for s in samplers]
    assert all(len(shard) == len(s) for shard, s in zip(shards, samplers))
    assert len({len(shard) for shard in shards}) <= 1  # every rank the same number
    counts = Counter(i for shard in shards for i in shard)
    if drop_last:
        assert all(c == 1 for c in counts.values())  # disjoint, nothing repeated
        assert size - len(counts) < replicas           # at most the remainder dropped
    else:
        assert set(counts) == set(range(size))          # covering
        assert sum(counts.values()) - size == (-size) % replicas  # only the padding repeats


def test_sampler_shuffles_by_seed_and_epoch():
    a = DistributedSampler(range(50), 2, 0, seed=3)
    b = DistributedSampler(range(50), 2, 1, seed=3)
    first = list(a)
    assert sorted(first + list(b)) == list(range(50))
    assert first != list(range(0, 50, 2))
    a.set_epoch(1)
    assert list(a) != first  # a new epoch, a new permutation
    b.set_epoch(1)
    assert sorted(list(a) + list(b)) == list(range(50))
    assert list(DistributedSampler(range(50), 2, 0, seed=4)) != first


def test_sampler_checks_its_arguments():
    with pytest.raises(ValueError, match="Invalid rank 3"):
        DistributedSampler(range(5), num_replicas=3, rank=3)
    with pytest.raises(ValueError, match="num_replicas"):
        DistributedSampler(range(5), num_replicas=0, rank=0)
    with pytest.raises(RuntimeError, match="init_process_group"):
        DistributedSampler(range(5))


# ------------------------------------------------------------------ examples/train.py

TRAIN = ROOT / "examples" / "train.py"
TINY_RUN = ["--limit", "32", "--batch-size", "16", "--scheduler", "none", "--no-progress"]


def _metrics(out: pathlib.Path) -> list[dict]:
    import json

    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


def _train_mpi(n: int, out: pathlib.Path, *args: str) -> str:
    mpiexec = _require_mpi()
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    result = subprocess.run([mpiexec, "-n", str(n), sys.executable, str(TRAIN), *TINY_RUN,
                             "--out", str(out), *args], capture_output=True, text=True,
                            env=env, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def test_train_py_under_mpiexec_writes_once_and_resumes_exactly(tmp_path):
    """Two ranks: rank 0 alone prints the accuracy line and writes the files; stopped
    after epoch 1 and resumed, the run equals the uninterrupted one."""
    import json

    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    out = _train_mpi(2, straight, "--epochs", "2")
    assert out.count("test accuracy:") == 1 and out.count("epoch   2/2") == 1, out
    final = json.loads((straight / "final.json").read_text())
    assert final["ranks"] == 2 and final["epochs"] == 2
    ckpt = tg.load(straight / "checkpoint.npz")
    states = [json.loads(s) for s in ckpt["rng"]["ranks"]]
    # every rank draws the batches a single process draws, and trains on its slice
    assert len(states) == 2 and states[0]["loader"] == states[1]["loader"]
    assert all(not k.startswith("module.") for k in ckpt["model"])  # the plain model's keys
    assert (straight / "curves.png").exists()

    _train_mpi(2, resumed, "--epochs", "1")
    out = _train_mpi(2, resumed, "--epochs", "2", "--resume")
    assert out.count("resuming resnet20 on digits after epoch 1") == 1, out
    assert _metrics(resumed) == _metrics(straight)


def test_train_py_refuses_a_batch_that_does_not_split():
    sys.path.insert(0, str(TRAIN.parent))
    try:
        import train as script
    finally:
        sys.path.remove(str(TRAIN.parent))
    args = script.parse_args(["--batch-size", "64", "--limit", "8"])
    three = types.SimpleNamespace(enabled=True, rank=0, size=3, main=True)
    with pytest.raises(script.UsageError, match="--batch-size 64 does not split over 3 ranks"):
        script.run(args, three)


def test_train_py_on_two_ranks_is_the_single_process_computation(tmp_path):
    """Each rank trains on its slice of the batch a single process draws, augmentation
    included; with SyncBatchNorm and averaged gradients that is the same computation
    (the last batch of 26 splits 13/13, of 21 unevenly 10/11: the loss weighting keeps
    it the whole batch's mean), up to the order of floating-point sums."""
    for limit in ("58", "53"):  # 32 + 26, 32 + 21
        one, two = tmp_path / f"one{limit}", tmp_path / f"two{limit}"
        args = ["--limit", limit, "--batch-size", "32", "--scheduler", "none",
                "--no-progress", "--epochs", "2"]
        result = subprocess.run([sys.executable, str(TRAIN), *args, "--out", str(one)],
                                capture_output=True, text=True, cwd=ROOT, timeout=120,
                                env=dict(os.environ, OMP_NUM_THREADS="1",
                                         OPENBLAS_NUM_THREADS="1"))
        assert result.returncode == 0, result.stdout + result.stderr
        _train_mpi(2, two, *args[:-2], "--epochs", "2")
        for a, b in zip(_metrics(one), _metrics(two), strict=True):
            for key in ("train_loss", "train_acc", "test_loss", "test_acc"):
                # float32 nets: sums in another order move the 4th-5th digit
                assert a[key] == pytest.approx(b[key], rel=1e-3, abs=1e-6), (limit, key)
