"""The built-in datasets, read from local files (nothing is ever downloaded).

- ``Digits``: scikit-learn's bundled 8×8 handwritten digits (1797 images, offline),
  split 80/20 into train/test by a fixed permutation.
- ``MNIST``, ``FashionMNIST``: the IDX files, gzipped or not. An IDX file is a
  4-byte magic number (two zero bytes, a type code — 0x08 for unsigned bytes — and
  the number of dimensions), one big-endian uint32 per dimension, then the data.
- ``CIFAR10``: the binary batches (records of 1 label byte + 3072 pixel bytes,
  channel-major: 1024 red, 1024 green, 1024 blue) or the python batches. The python
  batches are pickles, and unpickling can run arbitrary code, so they are read by
  an unpickler that admits only what a NumPy array needs and refuses anything else.

Every dataset yields float32 images in [0, 1] shaped (N, C, H, W) and int64 labels;
the pixels are kept as uint8 in memory and converted batch by batch.
"""

from __future__ import annotations

import codecs
import gzip
import os
import pickle
import struct
import zlib
from collections.abc import Callable

import numpy as np

from .dataset import ImageDataset

try:  # where NumPy keeps the helpers its arrays pickle through
    from numpy._core.multiarray import _reconstruct
    from numpy._core.numeric import _frombuffer
except ImportError:  # NumPy 1.x
    from numpy.core.multiarray import _reconstruct
    from numpy.core.numeric import _frombuffer


def _open_error(dataset: str, missing: str, url: str, hint: str) -> FileNotFoundError:
    return FileNotFoundError(f"{dataset}: cannot find {missing}. {hint} Get the data set "
                             f"from {url} (tensorgrad never downloads anything).")


# ------------------------------------------------------------------------- Digits
class Digits(ImageDataset):
    """scikit-learn's 8×8 digits: images (N, 1, 8, 8) in [0, 1] (pixel values are
    0..16), labels 0..9. ``train=True`` gives 1437 images, ``train=False`` the other
    360, always the same ones. ``root`` is accepted for a uniform signature and unused.
    """

    SPLIT_SEED = 0
    TRAIN_FRACTION = 0.8
    classes = [str(d) for d in range(10)]

    def __init__(self, root: str | os.PathLike | None = None, train: bool = True,
                 transform: Callable | None = None):
        if isinstance(root, bool):
            raise TypeError("Digits(root=None, train=True, transform=None): root is a path; "
                            "pass train as a keyword")
        try:
            from sklearn.datasets import load_digits
        except ImportError as e:
            raise ImportError("Digits needs scikit-learn, which ships the 8x8 digits: "
                              "pip install scikit-learn (or tensorgrad[examples])") from e
        digits = load_digits()
        n = len(digits.target)
        order = np.random.default_rng(self.SPLIT_SEED).permutation(n)
        n_train = int(n * self.TRAIN_FRACTION)
        self.indices = np.sort(order[:n_train] if train else order[n_train:])
        images = digits.images[self.indices].astype(np.uint8)[:, None]  # exact: 0..16
        super().__init__(images, digits.target[self.indices], max_value=16.0,
                         transform=transform)
        self.train = train


# -------------------------------------------------------------------------- IDX
def read_idx(path: str, ndim: int) -> np.ndarray:
    """An IDX file of unsigned bytes with ``ndim`` dimensions, as a uint8 array.
    Gzipped files are recognised by their content, not their name."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise ValueError(f"{path}: corrupt gzip data ({e})") from e
    if len(raw) < 4:
        raise ValueError(f"{path}: too short for an IDX file ({len(raw)} bytes)")
    zero, type_code, dims = raw[:2], raw[2], raw[3]
    if zero != b"\x00\x00" or type_code != 0x08 or dims != ndim:
        raise ValueError(f"{path}: bad IDX magic number 0x{raw[:4].hex()}; expected "
                         f"0x000008{ndim:02x} (unsigned bytes, {ndim} dimensions)")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(shape))
    if len(raw) - header != expected:
        raise ValueError(f"{path}: the header promises shape {shape} = {expected} bytes of "
                         f"data but the file holds {len(raw) - header}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


class MNIST(ImageDataset):
    """MNIST from the four IDX files in ``root`` (or ``root/MNIST/raw``, torchvision's
    layout), each gzipped (``.gz``) or not: images (N, 1, 28, 28) in [0, 1]."""

    URL = "https://yann.lecun.com/exdb/mnist/"
    FOLDER = "MNIST"
    FILES = {True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
    classes = [str(d) for d in range(10)]

    def __init__(self, root: str | os.PathLike, train: bool = True,
                 transform: Callable | None = None):
        root = os.fspath(root)
        image_file, label_file = (self._find(root, name) for name in self.FILES[bool(train)])
        images, labels = read_idx(image_file, 3), read_idx(label_file, 1)
        if images.shape[1:] != (28, 28):
            raise ValueError(f"{image_file}: expected 28x28 images, got {images.shape[1:]}")
        if len(images) != len(labels):
            raise ValueError(f"{image_file} holds {len(images)} images but {label_file} "
                             f"holds {len(labels)} labels")
        if labels.size and labels.max() >= len(self.classes):
            raise ValueError(f"{label_file}: label {labels.max()} is not a class 0..9")
        super().__init__(images[:, None], labels, max_value=255.0, transform=transform)
        self.root, self.train = root, train

    @classmethod
    def _find(cls, root: str, name: str) -> str:
        folders = [root, os.path.join(root, cls.FOLDER, "raw")]
        for folder in folders:
            for candidate in (name, name + ".gz"):
                path = os.path.join(folder, candidate)
                if os.path.isfile(path):
                    return path
        raise _open_error(cls.__name__, f"{os.path.join(root, name)}[.gz] (also looked in "
                          f"{folders[1]})", cls.URL,
                          "Put the four IDX files (gzipped or not) in that folder.")


class FashionMNIST(MNIST):
    """Zalando's Fashion-MNIST: the same IDX format and file names as MNIST."""

    URL = "https://github.com/zalandoresearch/fashion-mnist"
    FOLDER = "FashionMNIST"
    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
               "Sneaker", "Bag", "Ankle boot"]


# ---------------------------------------------------------------------- CIFAR-10
def _latin1_encode(text: str, encoding: str = "utf-8") -> bytes:
    # Python 3 pickles bytes at protocol 2 as _codecs.encode(text, "latin1"); nothing
    # else is needed, so no other codec is reachable from a file.
    if encoding != "latin1":
        raise pickle.UnpicklingError(f"refusing _codecs.encode with encoding {encoding!r}")
    return codecs.encode(text, "latin1")


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that can build NumPy arrays, dicts, lists, strings and numbers,
    and nothing else: any other global (``os.system``, ``builtins.eval``, ...) in the
    file is refused with ``pickle.UnpicklingError`` before it is called."""

    ALLOWED = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,   # pickled by NumPy 1.x
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct,  # pickled by NumPy 2
        ("numpy.core.numeric", "_frombuffer"): _frombuffer,        # protocol 5 pickles
        ("numpy._core.numeric", "_frombuffer"): _frombuffer,
        ("_codecs", "encode"): _latin1_encode,
    }

    def find_class(self, module: str, name: str):
        try:
            return self.ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to load {module}.{name}: only NumPy arrays are allowed"
            ) from None


def read_cifar_python_batch(path: str) -> tuple[np.ndarray, np.ndarray]:
    """One python batch (a pickled dict with ``data`` (n, 3072) uint8 and ``labels``)
    as (images (n, 3, 32, 32) uint8, labels (n,) int64), unpickled safely."""
    with open(path, "rb") as f:
        try:
            batch = RestrictedUnpickler(f, encoding="bytes").load()
        except Exception as e:  # refused global, truncated file, garbage ...
            raise ValueError(f"{path}: not a CIFAR-10 python batch ({type(e).__name__}: "
                             f"{e})") from e
    if not isinstance(batch, dict):
        raise ValueError(f"{path}: expected a pickled dict, got {type(batch).__name__}")
    data = batch.get(b"data", batch.get("data"))
    labels = batch.get(b"labels", batch.get("labels"))
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
            or data.shape[1] != 3072:
        shape = getattr(data, "shape", None)
        raise ValueError(f"{path}: 'data' must be a uint8 array (n, 3072), got "
                         f"{type(data).__name__} {shape} {getattr(data, 'dtype', '')}")
    try:
        labels = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{path}: 'labels' is not a list of ints") from e
    if labels.shape != (len(data),):
        raise ValueError(f"{path}: {len(data)} images but 'labels' has shape {labels.shape}")
    return data.reshape(-1, 3, 32, 32), _check_cifar_labels(labels, path)


def read_cifar_binary_batch(path: str) -> tuple[np.ndarray, np.ndarray]:
    """One binary batch: records of 1 label byte + 3072 pixel bytes."""
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0 or raw.size % 3073:
        raise ValueError(f"{path}: {raw.size} bytes is not a whole number of CIFAR-10 "
                         "records (1 label byte + 3072 pixel bytes each)")
    records = raw.reshape(-1, 3073)
    labels = _check_cifar_labels(records[:, 0].astype(np.int64), path)
    return records[:, 1:].reshape(-1, 3, 32, 32), labels


def _check_cifar_labels(labels: np.ndarray, path: str) -> np.ndarray:
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"{path}: CIFAR-10 labels must be 0..9, found "
                         f"{labels.min()}..{labels.max()}")
    return labels


class CIFAR10(ImageDataset):
    """CIFAR-10 from ``root``: the binary version (``root/cifar-10-batches-bin/
    data_batch_1.bin`` ... ``test_batch.bin``) or the python version
    (``root/cifar-10-batches-py/data_batch_1`` ... ``test_batch``), whichever is there
    (the folders' contents directly in ``root`` work too). Images (N, 3, 32, 32)."""

    URL = "https://www.cs.toronto.edu/~kriz/cifar.html"
    classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
               "ship", "truck"]

    def __init__(self, root: str | os.PathLike, train: bool = True,
                 transform: Callable | None = None):
        root = os.fspath(root)
        names = [f"data_batch_{i}" for i in range(1, 6)] if train else ["test_batch"]
        layouts = [(os.path.join(root, "cifar-10-batches-bin"), ".bin", read_cifar_binary_batch),
                   (os.path.join(root, "cifar-10-batches-py"), "", read_cifar_python_batch),
                   (root, ".bin", read_cifar_binary_batch),
                   (root, "", read_cifar_python_batch)]
        found = [layout for layout in layouts
                 if os.path.isfile(os.path.join(layout[0], names[0] + layout[1]))]
        if not found:
            raise _open_error("CIFAR10", f"{names[0]}(.bin) in {layouts[0][0]}, "
                              f"{layouts[1][0]} or {root}", self.URL,
                              "Extract cifar-10-binary.tar.gz or cifar-10-python.tar.gz "
                              "into that folder.")
        folder, suffix, read = found[0]  # the binary version first: no unpickling at all
        parts = []
        for name in names:
            path = os.path.join(folder, name + suffix)
            if not os.path.isfile(path):
                raise _open_error("CIFAR10", path, self.URL, "The batches are incomplete.")
            parts.append(read(path))
        images = np.concatenate([p[0] for p in parts])
        labels = np.concatenate([p[1] for p in parts])
        super().__init__(images, labels, max_value=255.0, transform=transform)
        self.root, self.train = root, train


__all__ = ["CIFAR10", "MNIST", "Digits", "FashionMNIST", "RestrictedUnpickler", "read_idx"]
