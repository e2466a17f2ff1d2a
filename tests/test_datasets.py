"""The built-in datasets, read from small files these tests write in each format:
IDX (plain and gzipped), CIFAR-10 binary and python batches — and a malicious pickle
that must be refused."""

from __future__ import annotations

import gzip
import os
import pickle
import struct

import numpy as np
import pytest

import tensorgrad as tg
from tensorgrad.data import CIFAR10, MNIST, DataLoader, Digits, FashionMNIST, RandomCrop

pytestmark = pytest.mark.cpu_only  # files and their formats, not devices


# ------------------------------------------------------------------------- Digits
def test_digits_split_sizes_disjoint_and_deterministic():
    train, test = Digits(train=True), Digits(train=False)
    assert (len(train), len(test)) == (1437, 360)
    assert set(train.indices.tolist()).isdisjoint(test.indices.tolist())
    assert sorted(train.indices.tolist() + test.indices.tolist()) == list(range(1797))
    np.testing.assert_array_equal(Digits(train=False).indices, test.indices)
    assert len(np.unique(test.labels)) == 10  # every digit is in the test split


def test_digits_images_are_the_sklearn_pixels_scaled():
    from sklearn.datasets import load_digits

    reference = load_digits()
    test = Digits(train=False)
    x, y = test.get_batch(np.arange(len(test)))
    assert x.shape == (360, 1, 8, 8) and x.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_allclose(x.numpy()[:, 0], reference.images[test.indices] / 16.0,
                               rtol=1e-7)
    np.testing.assert_array_equal(y.numpy(), reference.target[test.indices])
    assert x.numpy().min() >= 0.0 and x.numpy().max() <= 1.0


def test_digits_item_and_transform():
    ds = Digits(train=True, transform=RandomCrop(8, padding=2, generator=0))
    image, label = ds[0]
    assert image.shape == (1, 8, 8) and label.dtype == np.int64
    x, _ = next(iter(DataLoader(ds, batch_size=16, seed=0)))
    assert x.shape == (16, 1, 8, 8)
    with pytest.raises(TypeError, match="keyword"):
        Digits(False)


# -------------------------------------------------------------------------- IDX
def idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    """An IDX file written independently of the reader: magic, big-endian sizes, data."""
    header = bytes([0, 0, type_code, array.ndim]) + b"".join(
        struct.pack(">I", s) for s in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_mnist(folder, n_train=7, n_test=3, gz=False, seed=0):
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    data = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        for kind, arr in (("images-idx3-ubyte", images), ("labels-idx1-ubyte", labels)):
            raw = idx_bytes(arr)
            name = f"{prefix}-{kind}" + (".gz" if gz else "")
            with open(os.path.join(folder, name), "wb") as f:
                f.write(gzip.compress(raw) if gz else raw)
        data[prefix] = (images, labels)
    return data


@pytest.mark.parametrize("cls", [MNIST, FashionMNIST])
@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("train", [True, False])
def test_mnist_reads_idx_files(cls, gz, train, tmp_path):
    data = write_mnist(tmp_path, gz=gz)
    images, labels = data["train" if train else "t10k"]
    ds = cls(tmp_path, train=train)
    x, y = ds.get_batch(np.arange(len(ds)))
    assert len(ds) == len(labels)
    assert x.shape == (len(labels), 1, 28, 28) and x.dtype == np.float32
    np.testing.assert_allclose(x.numpy()[:, 0], images / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y.numpy(), labels)
    assert y.dtype == np.int64


def test_mnist_torchvision_layout(tmp_path):
    write_mnist(tmp_path / "FashionMNIST" / "raw", gz=True)
    assert len(FashionMNIST(tmp_path, train=False)) == 3
    with pytest.raises(FileNotFoundError):
        MNIST(tmp_path)  # MNIST looks in MNIST/raw, not FashionMNIST/raw


@pytest.mark.parametrize("cls, url", [(MNIST, "yann.lecun.com"),
                                      (FashionMNIST, "zalandoresearch/fashion-mnist")])
def test_missing_idx_file_names_file_and_source(cls, url, tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        cls(tmp_path / "nowhere")
    message = str(info.value)
    assert "train-images-idx3-ubyte" in message and str(tmp_path / "nowhere") in message
    assert url in message


def _corrupt(folder, name, raw):
    with open(os.path.join(folder, name), "wb") as f:
        f.write(raw)
    return os.path.join(folder, name)


@pytest.mark.parametrize("name, raw, match", [
    ("train-images-idx3-ubyte", idx_bytes(np.zeros((7, 28, 28)), type_code=0x0D), "magic"),
    ("train-images-idx3-ubyte", idx_bytes(np.zeros((7, 28))), "magic"),  # 2-d, wants 3
    ("train-images-idx3-ubyte", idx_bytes(np.zeros((7, 28, 28)))[:-5], "shape"),
    ("train-images-idx3-ubyte", idx_bytes(np.zeros((7, 28, 28))) + b"x", "shape"),
    ("train-images-idx3-ubyte", b"\x00\x00", "too short"),
    ("train-images-idx3-ubyte", idx_bytes(np.zeros((7, 27, 27))), "28x28"),
    ("train-labels-idx1-ubyte", idx_bytes(np.zeros(6)), "7 images.*6 labels"),
    ("train-labels-idx1-ubyte", idx_bytes(np.full(7, 12)), "label 12"),
    ("train-images-idx3-ubyte", b"\x1f\x8b" + b"not really gzip" * 3, "gzip"),
])
def test_malformed_idx_rejected_naming_the_file(name, raw, match, tmp_path):
    write_mnist(tmp_path)
    path = _corrupt(tmp_path, name, raw)
    with pytest.raises(ValueError, match=match) as info:
        MNIST(tmp_path, train=True)
    assert path in str(info.value)


# ---------------------------------------------------------------------- CIFAR-10
def cifar_records(n, seed):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
            rng.integers(0, 10, size=n).astype(np.uint8))


BATCHES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def write_cifar_bin(folder, n=4):
    os.makedirs(folder, exist_ok=True)
    data = {}
    for k, name in enumerate(BATCHES):
        pixels, labels = cifar_records(n, k)
        records = np.concatenate([labels[:, None], pixels], axis=1)
        (folder / f"{name}.bin").write_bytes(records.tobytes())
        data[name] = (pixels, labels)
    return data


def write_cifar_py(folder, n=4):
    os.makedirs(folder, exist_ok=True)
    data = {}
    for k, name in enumerate(BATCHES):
        pixels, labels = cifar_records(n, k)
        batch = {b"batch_label": f"batch {k}".encode(), b"labels": labels.tolist(),
                 b"data": pixels, b"filenames": [b"img%d.png" % i for i in range(n)]}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
        data[name] = (pixels, labels)
    return data


@pytest.mark.parametrize("version", ["bin", "py"])
@pytest.mark.parametrize("train", [True, False])
def test_cifar10_reads_both_versions(version, train, tmp_path):
    write = write_cifar_bin if version == "bin" else write_cifar_py
    data = write(tmp_path / f"cifar-10-batches-{version}")
    names = BATCHES[:5] if train else BATCHES[5:]
    pixels = np.concatenate([data[n][0] for n in names])
    labels = np.concatenate([data[n][1] for n in names])
    ds = CIFAR10(tmp_path, train=train)
    x, y = ds.get_batch(np.arange(len(ds)))
    assert len(ds) == len(labels) and x.shape == (len(labels), 3, 32, 32)
    assert x.dtype == np.float32 and y.dtype == np.int64
    # channel-major records: the first 1024 bytes are the red plane, row by row
    np.testing.assert_allclose(x.numpy()[:, 0].reshape(len(labels), -1),
                               pixels[:, :1024] / 255.0, rtol=1e-6)
    np.testing.assert_allclose(x.numpy().reshape(len(labels), -1), pixels / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y.numpy(), labels)


class _Evil:
    def __init__(self, call, marker):
        self.call, self.marker = call, marker

    def __reduce__(self):
        if self.call == "system":
            return (os.system, (f"touch {self.marker}",))
        return (eval, (f"open({str(self.marker)!r}, 'w').close()",))


@pytest.mark.parametrize("call", ["system", "eval"])
def test_malicious_cifar_pickle_is_refused(call, tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar_py(folder)
    marker = tmp_path / "pwned"
    evil = {b"data": np.zeros((1, 3072), np.uint8), b"labels": [_Evil(call, marker)]}
    (folder / "test_batch").write_bytes(pickle.dumps(evil, protocol=2))
    with pytest.raises(ValueError, match="refusing") as info:
        CIFAR10(tmp_path, train=False)
    assert str(folder / "test_batch") in str(info.value)
    assert not marker.exists()


@pytest.mark.parametrize("payload, match", [
    (pickle.dumps([1, 2, 3], protocol=2), "dict"),
    (pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}), "3072"),
    (pickle.dumps({b"data": np.zeros((2, 3072), np.float32), b"labels": [0, 1]}), "uint8"),
    (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}), "labels"),
    (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}), "0..9"),
    (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1]})[:-20],
     "not a CIFAR-10"),
])
def test_malformed_cifar_python_batch(payload, match, tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar_py(folder)
    (folder / "test_batch").write_bytes(payload)
    with pytest.raises(ValueError, match=match) as info:
        CIFAR10(tmp_path, train=False)
    assert str(folder / "test_batch") in str(info.value)


def test_malformed_cifar_binary_batch(tmp_path):
    folder = tmp_path / "cifar-10-batches-bin"
    write_cifar_bin(folder)
    (folder / "test_batch.bin").write_bytes(b"\x01" * 3000)
    with pytest.raises(ValueError, match="records") as info:
        CIFAR10(tmp_path, train=False)
    assert str(folder / "test_batch.bin") in str(info.value)


def test_cifar10_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        CIFAR10(tmp_path)
    assert "data_batch_1" in str(info.value) and "cs.toronto.edu/~kriz/cifar" in str(info.value)
    folder = tmp_path / "cifar-10-batches-bin"
    write_cifar_bin(folder)
    (folder / "data_batch_4.bin").unlink()
    with pytest.raises(FileNotFoundError) as info:
        CIFAR10(tmp_path, train=True)
    assert str(folder / "data_batch_4.bin") in str(info.value)


def test_cifar10_loader_batches(tmp_path):
    write_cifar_bin(tmp_path / "cifar-10-batches-bin")
    loader = DataLoader(CIFAR10(tmp_path), batch_size=8, shuffle=True, seed=0, prefetch=2)
    batches = list(loader)
    assert len(batches) == len(loader) == 3
    assert all(isinstance(x, tg.Tensor) and x.dtype == np.float32 for x, _ in batches)
