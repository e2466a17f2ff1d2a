"""Train a lecture architecture end to end — the project's main job (``make train``).

    python examples/train.py                  # CIFAR ResNet-20 on Digits, >= 97 % in minutes
    mpiexec -n 2 python examples/train.py     # the same, data parallel over 2 processes
    python examples/train.py --model resnet56 --dataset cifar10 --data-dir data/cifar10 \\
        --epochs 160 --batch-size 128 --lr 0.1 --weight-decay 1e-4 --scheduler cosine

The defaults train the CIFAR-style residual network of the lecture's ResNet section
(docs/lecture.md; He et al. 2016 §4.2: three stages of 16/32/64 channels, global average
pooling, one FC) with SGD + momentum on scikit-learn's bundled 8×8 digits, so they
need no download. Into ``--out DIR`` the run writes:

    metrics.jsonl    one JSON line per epoch: epoch, train_loss, train_acc, test_loss,
                     test_acc, lr, seconds
    curves.png       loss and accuracy per epoch, train and test (redrawn every epoch)
    checkpoint.npz   everything needed to continue (tg.save, atomic): model, optimizer
                     and scheduler state, RNG states, epoch, best accuracy, the metrics
                     history, the model name and the arguments
    final.json       model, dataset, epochs, test_accuracy, test_loss, seconds, ...

and its last line on stdout is ``test accuracy: 0.xxxx``.

Data parallel: launched by ``mpiexec -n N`` (or ``srun``; ``--distributed`` forces it),
the run splits every batch of ``--batch-size`` over the N ranks (it must divide): every
rank draws the batch a single process would (same order, same augmentation) and trains
on its slice of it, with BatchNorm synchronised (SyncBatchNorm) and gradients averaged
(DistributedDataParallel) — so it is the computation of ``make train``, up to the order
of floating-point sums, and reaches its accuracy. (Drawing the whole batch on every rank
is cheap for images this small; a large data set would give each rank its own shard
with ``tg.data.DistributedSampler``, which draws different batches.) The metrics are
those of the whole batch and test set (summed over the ranks); only rank 0 prints and
writes files, and the checkpoint keeps every rank's RNG state, so ``--resume``
continues exactly.

Kill-safety: the run may be killed (even with SIGKILL) at any moment and continued
with ``--resume``. Three rules make that exact:

1. The checkpoint is written *before* the epoch's line is appended to metrics.jsonl,
   and it carries the whole metrics history. ``--resume`` rewrites metrics.jsonl from
   that history, so a kill between the two writes (or halfway through a line) neither
   loses nor repeats an epoch.
2. ``tg.save`` writes a temporary file and renames it, so the checkpoint on disk is
   always a complete one: the previous epoch's or this one's.
3. Randomness is a function of (seed, epoch): the DataLoader draws epoch e's shuffling
   and augmentation from (seed, e), and tensorgrad's generator (initialisation,
   dropout) is reseeded from (seed, e) when the epoch starts. The checkpoint keeps
   both generators' states, and a resumed run draws exactly the random numbers the
   uninterrupted run drew, so on the CPU it ends with the same metrics.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import os
import sys
import time
from pathlib import Path

# Small convolutions on small images: one BLAS thread is as fast as several, and several
# spin and starve each other on a busy machine. Set OPENBLAS_NUM_THREADS to override.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a plain checkout

import models  # noqa: E402
import nn  # noqa: E402
import tensorgrad as tg  # noqa: E402
import tensorgrad.distributed as dist  # noqa: E402
import tensorgrad.functional as F  # noqa: E402
from tensorgrad import data  # noqa: E402
from tensorgrad.data.transforms import Transform  # noqa: E402

DATASETS = {  # name -> (class in tg.data, needs --data-dir)
    "digits": ("Digits", False),
    "mnist": ("MNIST", True),
    "fashion-mnist": ("FashionMNIST", True),
    "cifar10": ("CIFAR10", True),
}
NUM_CLASSES = 10  # all four data sets have ten classes
OPTIMIZERS = ("sgd", "rmsprop", "adam", "adamw")
# --lr when none is given: SGD + momentum trains these nets at 0.1; the adaptive methods
# divide by a running RMS of the gradient and diverge at that rate, 1e-3 is their usual one
DEFAULT_LR = {"sgd": 0.1, "rmsprop": 1e-3, "adam": 1e-3, "adamw": 1e-3}
SCHEDULERS = ("none", "step", "cosine")
# what MPI launchers (MPICH's and Open MPI's mpiexec, srun with PMI) tell each process
LAUNCHER_SIZE = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")
LAUNCHER_RANK = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "MV2_COMM_WORLD_RANK")


class UsageError(Exception):
    """A bad argument: reported as one line on stderr, never as a traceback."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse prints usage + error; we want one line
        raise UsageError(message)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = _Parser(description=__doc__.split("\n")[0], prog="train.py")
    p.add_argument("--model", default="resnet20",
                   help="a constructor in models (resnet20, plain56, resnet18, vgg11, ...)")
    p.add_argument("--dataset", default="digits", help=" | ".join(DATASETS))
    p.add_argument("--data-dir", default=None, help="folder holding the data set's files")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--optimizer", default="sgd", help=" | ".join(OPTIMIZERS))
    p.add_argument("--lr", type=float, default=None,
                   help="learning rate (default: " + ", ".join(
                       f"{k} {v:g}" for k, v in DEFAULT_LR.items()) + ")")
    p.add_argument("--momentum", type=float, default=0.9, help="SGD's momentum")
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--scheduler", default="cosine", help=" | ".join(SCHEDULERS))
    p.add_argument("--image-size", type=int, default=None,
                   help="resize (nearest, up or down) the images to this size × size; "
                        "default: the data set's own (8 for digits, 28 for MNIST, 32 for "
                        "CIFAR-10); ImageNet models need at least 32")
    p.add_argument("--augment", action=argparse.BooleanOptionalAction, default=True,
                   help="random crops (and flips for CIFAR-10) while training")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--out", default=None, help="output folder (default runs/<model>-<dataset>)")
    p.add_argument("--resume", action="store_true", help="continue from DIR/checkpoint.npz")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--distributed", action="store_true",
                   help="data parallel over the ranks of mpiexec -n N (detected from the "
                        "launcher's environment; this forces it, e.g. with one rank)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--limit", type=int, default=None, help=argparse.SUPPRESS)  # for tests
    args = p.parse_args(argv)

    if args.model not in model_names():
        raise UsageError(f"unknown model {args.model!r}; choose from {', '.join(model_names())}")
    if args.dataset not in DATASETS:
        raise UsageError(f"unknown dataset {args.dataset!r}; choose from {', '.join(DATASETS)}")
    if args.optimizer not in OPTIMIZERS:
        raise UsageError(f"unknown optimizer {args.optimizer!r}; choose from "
                         f"{', '.join(OPTIMIZERS)}")
    if args.scheduler not in SCHEDULERS:
        raise UsageError(f"unknown scheduler {args.scheduler!r}; choose from "
                         f"{', '.join(SCHEDULERS)}")
    for name in ("epochs", "batch_size"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1, "
                             f"got {getattr(args, name)}")
    if args.lr is None:
        args.lr = DEFAULT_LR[args.optimizer]
    if args.lr <= 0:
        raise UsageError(f"--lr must be positive, got {args.lr}")
    if args.image_size is not None and args.image_size < 1:
        raise UsageError(f"--image-size must be at least 1, got {args.image_size}")
    needs_dir = DATASETS[args.dataset][1]
    if needs_dir and args.data_dir is None:
        raise UsageError(f"--dataset {args.dataset} needs --data-dir (a folder with its files)")
    if args.data_dir is not None and not Path(args.data_dir).is_dir():
        raise UsageError(f"data directory {args.data_dir!r} does not exist")
    if args.out is None:
        args.out = os.path.join("runs", f"{args.model}-{args.dataset}")
    return args


def model_names() -> list[str]:
    """The constructors in ``models``: functions taking ``num_classes``."""
    return sorted(name for name, f in vars(models).items()
                  if inspect.isfunction(f) and not name.startswith("_")
                  and "num_classes" in inspect.signature(f).parameters)


def pick_device(name: str) -> str:
    if name == "auto":
        return "cuda" if tg.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not tg.cuda.is_available():
        raise UsageError(f"--device {name}: CUDA is not available ({tg.cuda.unavailable_reason()})")
    if name != "cpu" and not name.startswith("cuda"):
        raise UsageError(f"unknown device {name!r}; choose auto, cpu, cuda or cuda:N")
    return name


class Ranks:
    """This process's place in a data-parallel run: rank 0 of 1 without a launcher."""

    def __init__(self, distributed: bool):
        self.enabled = distributed
        self.rank, self.size = 0, 1
        if distributed:
            if not dist.is_available():
                raise UsageError('data-parallel training needs mpi4py and an MPI library: '
                                 'pip install -e ".[distributed]"')
            dist.init_process_group()
            self.rank, self.size = dist.get_rank(), dist.get_world_size()

    @property
    def main(self) -> bool:
        """Rank 0: the one that prints and writes files."""
        return self.rank == 0

    def sum(self, *values: float) -> list[float]:
        """Each value summed over the ranks (the epoch's totals of loss, hits, images)."""
        if not self.enabled:
            return list(values)
        totals = tg.tensor(np.array(values, dtype=np.float64))
        dist.all_reduce(totals)
        return totals.tolist()

    def rank0s(self, value):
        """Rank 0's ``value``, on every rank (a decision they must all share)."""
        if not self.enabled:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def agree(self, error: str | None) -> None:
        """Raise the first rank's error on every rank, so that no rank goes on alone
        into a collective that the failed one will never join."""
        if self.enabled:
            errors = [None] * self.size
            dist.all_gather_object(errors, error)
            error = next((e for e in errors if e is not None), None)
        if error is not None:
            raise UsageError(error)

    def gather(self, obj) -> list:
        """Every rank's ``obj``, in rank order."""
        if not self.enabled:
            return [obj]
        every = [None] * self.size
        dist.all_gather_object(every, obj)
        return every


def launched_by_mpi() -> bool:
    """Whether an MPI launcher started this process as one of several."""
    return any(int(os.environ.get(v) or 1) > 1 for v in LAUNCHER_SIZE)


def launcher_rank() -> int:
    """This process's rank from the launcher's environment (0 without one)."""
    return next((int(os.environ[v]) for v in LAUNCHER_RANK if os.environ.get(v)), 0)


# ------------------------------------------------------------------------ data


class Resize(Transform):
    """Nearest-neighbour resize of a (N, C, H, W) batch to size × size."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def apply(self, x, rng):
        xp = tg.get_array_module(x)
        rows = xp.arange(self.size) * x.shape[2] // self.size
        cols = xp.arange(self.size) * x.shape[3] // self.size
        return x[:, :, rows][:, :, :, cols]


def head(dataset, n: int) -> data.TensorDataset:
    """The first ``n`` examples of ``dataset``, as float images in [0, 1] and labels."""
    return data.TensorDataset(*dataset.get_batch(np.arange(min(n, len(dataset)))))


def load_data(args):
    """Train and test sets, and the transforms of their batches (resize, augmentation,
    normalisation with the training set's per-channel statistics)."""
    cls = getattr(data, DATASETS[args.dataset][0])
    kwargs = {} if args.data_dir is None else {"root": args.data_dir}
    try:
        train_set, test_set = cls(train=True, **kwargs), cls(train=False, **kwargs)
    except (OSError, ValueError, RuntimeError) as e:  # missing or malformed files
        raise UsageError(f"cannot load {args.dataset}: {e}".replace("\n", " ")) from e
    if args.limit is not None:  # the first images only, for quick tests
        train_set, test_set = head(train_set, args.limit), head(test_set, args.limit)
    sample, _ = train_set.get_batch(np.arange(min(len(train_set), 10_000)))
    sample = sample.numpy()
    mean, std = sample.mean(axis=(0, 2, 3)), sample.std(axis=(0, 2, 3)) + 1e-6
    in_channels, native = sample.shape[1], sample.shape[2]
    size = args.image_size or native
    resize = [Resize(size)] if size != native else []
    augment = []
    if args.augment:  # shifts by up to 1/8 of the size; mirror images only for photos
        augment.append(data.RandomCrop(size, padding=max(1, size // 8)))
        if args.dataset == "cifar10":
            augment.append(data.RandomHorizontalFlip(0.5))
    normalize = [data.Normalize(mean.tolist(), std.tolist())]
    return (train_set, data.Compose(resize + augment + normalize),
            test_set, data.Compose(resize + normalize), in_channels)


def check_input_size(model, x, args, device: str) -> None:
    """Fail at once, in one line, if the model cannot take the images (an ImageNet net's
    pooling stages shrink 8×8 digits to nothing), naming ``--image-size`` and a size
    that works. ``x`` is one transformed test image; the probe runs in eval mode under
    no_grad, so it changes no state and draws no random numbers."""
    error = _forward_error(model, x.to(device))
    if error is None:
        return
    size = x.shape[-1]
    fits = next((s for s in (32, 64, 128, 224) if s > size
                 and _forward_error(model, Resize(s)(x).to(device)) is None), None)
    hint = f"e.g. --image-size {fits}" if fits else "a larger --image-size"
    raise UsageError(f"--model {args.model} does not fit {size}×{size} images ({error}); "
                     f"resize them with {hint}")


def _forward_error(model, x) -> str | None:
    """The first line of the error a forward pass on ``x`` raises, or None."""
    training = model.training
    model.eval()
    try:
        with tg.no_grad():
            model(x)
    except (ValueError, RuntimeError, IndexError) as e:
        return str(e).splitlines()[0] if str(e) else type(e).__name__
    finally:
        model.train(training)
    return None


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """A seed for one epoch (of one rank), derived from the run's seed (see rule 3)."""
    entropy = [seed, epoch] if rank == 0 else [seed, epoch, rank]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


# ------------------------------------------------------------------ training


def make_optimizer(args, params):
    if args.optimizer == "sgd":
        return nn.optim.SGD(params, lr=args.lr, momentum=args.momentum,
                            weight_decay=args.weight_decay)
    if args.optimizer == "rmsprop":
        return nn.optim.RMSprop(params, lr=args.lr, weight_decay=args.weight_decay)
    if args.optimizer == "adam":
        return nn.optim.Adam(params, lr=args.lr, weight_decay=args.weight_decay)
    return nn.optim.AdamW(params, lr=args.lr, weight_decay=args.weight_decay)


def make_scheduler(args, optimizer):
    if args.scheduler == "step":  # /10 every third of the run, as He et al.'s two drops
        return nn.optim.lr_scheduler.StepLR(optimizer, step_size=max(1, args.epochs // 3),
                                            gamma=0.1)
    if args.scheduler == "cosine":
        return nn.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)
    return None


def loss_of(output, y):
    """Cross-entropy; GoogLeNet's auxiliary classifiers count 0.3 each, as in the paper."""
    if isinstance(output, tuple):
        logits, *aux = output
        return logits, F.cross_entropy(logits, y) + sum(0.3 * F.cross_entropy(a, y) for a in aux)
    return output, F.cross_entropy(output, y)


def count_correct(logits, y) -> int:
    return int((logits.data.argmax(axis=1) == y.data).sum())


def train_epoch(model, loader, optimizer, device, bar,
                rank: int = 0, ranks: int = 1) -> tuple[float, int, int]:
    """One pass over ``loader``: (summed loss, correct predictions, images). With
    several ranks each trains on its slice of every batch."""
    model.train()
    seen = correct = 0
    loss_sum = 0.0
    start = time.perf_counter()
    for x, y in loader:
        total = len(y)
        if ranks > 1:
            if total < ranks:  # (a last batch too small to give every rank a sample)
                continue
            part = slice(rank * total // ranks, (rank + 1) * total // ranks)
            x, y = x[part], y[part]
        x, y = x.to(device), y.to(device)
        logits, loss = loss_of(model(x), y)
        # the gradients are averaged over the ranks: weighting each rank's mean by its
        # share of the batch makes that the whole batch's mean (slices may differ by one)
        scale = len(y) * ranks / total
        optimizer.zero_grad()
        (loss * scale if scale != 1 else loss).backward()
        optimizer.step()
        n = len(y)
        seen += n
        loss_sum += loss.item() * n
        correct += count_correct(logits, y)
        bar.update(1)
        bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{correct / seen:.4f}",
                        img_s=f"{seen / (time.perf_counter() - start):.0f}")
    return loss_sum, correct, seen


@tg.no_grad()
def evaluate(model, loader, device) -> tuple[float, int, int]:
    """(summed loss, correct predictions, images) over ``loader``."""
    model.eval()
    seen = correct = 0
    loss_sum = 0.0
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        logits = model(x)
        loss_sum += F.cross_entropy(logits, y, reduction="sum").item()
        correct += count_correct(logits, y)
        seen += len(y)
    return loss_sum, correct, seen


# ------------------------------------------------------------------ outputs


def write_metrics(path: Path, history: list[dict]) -> None:
    """Rewrite metrics.jsonl from the checkpoint's history (atomically)."""
    tmp = path.with_suffix(".jsonl.tmp")
    tmp.write_text("".join(json.dumps(row) + "\n" for row in history))
    os.replace(tmp, path)


def append_metrics(path: Path, row: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")
        f.flush()
        os.fsync(f.fileno())


def plot_curves(path: Path, history: list[dict], title: str) -> None:
    """Loss and accuracy per epoch, train and test, written atomically as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] for row in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, label in ((ax_loss, "loss", "loss"), (ax_acc, "acc", "accuracy")):
        ax.plot(epochs, [row[f"train_{key}"] for row in history], "o-", label="train")
        ax.plot(epochs, [row[f"test_{key}"] for row in history], "s--", label="test")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    tmp = path.with_suffix(".png.tmp")
    fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    os.replace(tmp, path)


def write_json(path: Path, obj: dict) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    os.replace(tmp, path)


# ---------------------------------------------------------------------- main


def resume_from(path: Path, args, model, optimizer, scheduler, device) -> dict:
    """Load a checkpoint into model, optimizer and scheduler; returns it."""
    try:
        ckpt = tg.load(path, map_location=device)
    except Exception as e:  # noqa: BLE001 - any unreadable file is a usage error here
        raise UsageError(f"cannot read checkpoint {path}: {e}") from e
    if ckpt.get("model_name") != args.model:
        raise UsageError(f"checkpoint {path} is for model {ckpt.get('model_name')!r}, "
                         f"not {args.model!r}")
    if ckpt.get("dataset") != args.dataset:
        raise UsageError(f"checkpoint {path} was trained on {ckpt.get('dataset')!r}, "
                         f"not {args.dataset!r}")
    saved = _saved_args(ckpt).get("optimizer", args.optimizer)
    if saved != args.optimizer:  # its state (momenta, moment estimates) fits only its own kind
        raise UsageError(f"checkpoint {path} was trained with --optimizer {saved}, not "
                         f"{args.optimizer}; resume with --optimizer {saved}, or start a new "
                         f"run in another --out")
    try:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        if scheduler is not None and ckpt["scheduler"]:
            scheduler.load_state_dict(ckpt["scheduler"])
    except (KeyError, ValueError, RuntimeError, TypeError) as e:
        raise UsageError(f"checkpoint {path} does not fit this run: "
                         f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from e
    return ckpt  # the generators' states are restored by the caller (rank_state)


def _saved_args(ckpt: dict) -> dict:
    """The command-line arguments a checkpoint was written with (empty if unreadable)."""
    try:
        saved = json.loads(ckpt.get("args", "{}"))
    except (TypeError, ValueError):
        return {}
    return saved if isinstance(saved, dict) else {}


def run(args, ranks: Ranks | None = None) -> dict:
    ranks = ranks or Ranks(False)
    if args.batch_size % ranks.size:
        raise UsageError(f"--batch-size {args.batch_size} does not split over {ranks.size} "
                         f"ranks; use a multiple of {ranks.size}")
    device = pick_device(args.device)
    if ranks.enabled and device == "cuda":  # one GPU per rank: its rank on this machine
        device = f"cuda:{dist.get_node_local_rank() % tg.cuda.device_count()}"
    train_set, train_transform, test_set, test_transform, in_channels = together(
        ranks, load_data, args)
    out = Path(args.out)
    if ranks.main:
        out.mkdir(parents=True, exist_ok=True)
    ckpt_path, metrics_path = out / "checkpoint.npz", out / "metrics.jsonl"

    tg.manual_seed(args.seed)
    model = getattr(models, args.model)(num_classes=NUM_CLASSES, in_channels=in_channels)
    model.to(device)
    check_input_size(model, test_transform(test_set.get_batch(np.arange(1))[0]), args, device)
    net = model  # what the training loop calls: the model, or its data-parallel wrapper
    if ranks.enabled:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=None if device == "cpu" else [device])
        test_set = data.Subset(test_set, np.arange(ranks.rank, len(test_set), ranks.size))
    optimizer = make_optimizer(args, model.parameters())
    scheduler = make_scheduler(args, optimizer)
    # the loader augments in a background thread, one batch ahead of the model; every
    # rank draws the batches (and augmentation) a single process draws, and trains on
    # its slice of each (train_epoch)
    train_loader = data.DataLoader(train_set, batch_size=args.batch_size, shuffle=True,
                                   seed=args.seed, transform=train_transform, prefetch=2)
    test_loader = data.DataLoader(test_set, batch_size=max(args.batch_size, 256),
                                  transform=test_transform)

    history: list[dict] = []
    best = 0.0
    if ranks.rank0s(args.resume and ckpt_path.exists()):
        ckpt = together(ranks, resume_from, ckpt_path, args, model, optimizer, scheduler,
                        device)
        state = rank_state(ckpt, ranks)
        tg.set_rng_state(state["tensorgrad"])
        train_loader.load_state_dict(state["loader"])
        history = [dict(row) for row in ckpt["history"]]
        best = float(ckpt["best_accuracy"])
        if ranks.main:
            print(f"resuming {args.model} on {args.dataset} after epoch {len(history)}",
                  file=sys.stderr)
    elif ranks.main:
        if args.resume:
            print(f"no checkpoint in {out}; starting from scratch", file=sys.stderr)
        ckpt_path.unlink(missing_ok=True)  # a stale run's, which a later --resume must not use
    if ranks.main:
        (out / "final.json").unlink(missing_ok=True)  # written again when this run ends
        write_metrics(metrics_path, history)  # drops any line the checkpoint does not hold
        if history:
            plot_curves(out / "curves.png", history, f"{args.model} on {args.dataset}")

    from tqdm import tqdm

    for epoch in range(len(history) + 1, args.epochs + 1):
        tg.manual_seed(epoch_seed(args.seed, epoch, ranks.rank))
        train_loader.set_epoch(epoch)
        lr = optimizer.param_groups[0]["lr"]
        start = time.perf_counter()
        with tqdm(total=len(train_loader), desc=f"epoch {epoch}/{args.epochs}", file=sys.stderr,
                  unit="batch", leave=False, disable=args.no_progress or not ranks.main) as bar:
            sums = train_epoch(net, train_loader, optimizer, device, bar, ranks.rank,
                               ranks.size)
        sums += evaluate(model, test_loader, device)
        train_loss, train_correct, train_seen, test_loss, test_correct, test_seen = \
            ranks.sum(*sums)  # the whole batch's and test set's, over the ranks
        train_loss, train_acc = train_loss / train_seen, train_correct / train_seen
        test_loss, test_acc = test_loss / test_seen, test_correct / test_seen
        if scheduler is not None:
            scheduler.step()
        row = {"epoch": epoch, "train_loss": train_loss, "train_acc": train_acc,
               "test_loss": test_loss, "test_acc": test_acc, "lr": lr,
               "seconds": time.perf_counter() - start}
        history.append(row)
        best = max(best, test_acc)
        rng = {"tensorgrad": json.dumps(tg.get_rng_state()), "loader": train_loader.state_dict()}
        if ranks.enabled:  # every rank's generators, so that --resume restores each
            rng["ranks"] = ranks.gather(json.dumps(rng))
        if not ranks.main:
            continue
        tg.save({  # first the checkpoint, then metrics.jsonl (rule 1 above)
            "model_name": args.model, "dataset": args.dataset, "epoch": epoch,
            "best_accuracy": best, "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else {},
            "rng": rng, "history": history, "args": json.dumps(vars(args)),
        }, ckpt_path)
        append_metrics(metrics_path, row)
        plot_curves(out / "curves.png", history, f"{args.model} on {args.dataset}")
        tqdm.write(f"epoch {epoch:3d}/{args.epochs}  train loss {train_loss:.4f} "
                   f"acc {train_acc:.4f}  test loss {test_loss:.4f} acc {test_acc:.4f}  "
                   f"lr {lr:.4g}  {row['seconds']:.1f}s")

    last = history[-1]
    final = {"model": args.model, "dataset": args.dataset, "epochs": last["epoch"],
             "test_accuracy": last["test_acc"], "test_loss": last["test_loss"],
             "train_accuracy": last["train_acc"], "train_loss": last["train_loss"],
             "best_accuracy": best, "seconds": sum(row["seconds"] for row in history),
             "device": device, "seed": args.seed, "ranks": ranks.size,
             "parameters": sum(int(math.prod(p.shape)) for p in model.parameters())}
    if ranks.main:
        write_json(out / "final.json", final)
    return final


def together(ranks: Ranks, fn, *args):
    """``fn(*args)``, where a UsageError on any rank is raised on every rank."""
    result, error = None, None
    try:
        result = fn(*args)
    except UsageError as e:
        error = str(e)
    ranks.agree(error)
    return result


def rank_state(ckpt: dict, ranks: Ranks) -> dict:
    """This rank's generator states from a checkpoint (rank 0's when the checkpoint was
    written by another number of ranks, or by one process)."""
    rng = ckpt["rng"]
    every = rng.get("ranks")
    if every is not None and len(every) == ranks.size:
        rng = json.loads(every[ranks.rank])
    return {"tensorgrad": json.loads(rng["tensorgrad"]), "loader": rng["loader"]}


def main(argv: list[str] | None = None) -> int:
    ranks = None
    try:
        args = parse_args(argv)
        ranks = Ranks(args.distributed or launched_by_mpi())
        final = run(args, ranks)
    except UsageError as e:
        if (ranks.rank if ranks is not None else launcher_rank()) == 0:  # said once
            print(f"train.py: error: {e}", file=sys.stderr)
        return 2
    if ranks.main:
        print(f"test accuracy: {final['test_accuracy']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
