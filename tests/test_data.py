"""tg.data: Dataset, TensorDataset, Subset, random_split, DataLoader (batching,
shuffling, samplers, collate_fn, seeds, resume, worker threads, prefetch) and the batch
transforms."""

from __future__ import annotations

import gc
import threading
import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tensorgrad as tg
from tensorgrad.data import (
    Compose,
    DataLoader,
    Dataset,
    ImageDataset,
    Normalize,
    RandomCrop,
    RandomHorizontalFlip,
    TensorDataset,
)


def labelled(n: int, features: int = 3, device: str = "cpu") -> TensorDataset:
    """A dataset whose label is the example's index, so batches reveal the order."""
    x = np.arange(n * features, dtype=np.float32).reshape(n, features)
    return TensorDataset(tg.tensor(x, device=device), tg.tensor(np.arange(n), device=device))


def labels_of(loader) -> list[np.ndarray]:
    return [batch[1].numpy() for batch in loader]


class CountingDataset(TensorDataset):
    """Counts per-example accesses: the loader should not make any."""

    def __init__(self, *tensors):
        super().__init__(*tensors)
        self.item_calls = 0

    def __getitem__(self, index):
        self.item_calls += 1
        return super().__getitem__(index)


class ItemOnly(Dataset):
    """A generic dataset: only __getitem__ / __len__, Python values."""

    def __init__(self, n: int):
        self.n = n

    def __getitem__(self, i):
        return np.full((2, 2), i, dtype=np.float32), i

    def __len__(self):
        return self.n


# ----------------------------------------------------------------------- datasets
def test_dataset_is_abstract():
    with pytest.raises(TypeError):
        Dataset()

    class NoLen(Dataset):
        def __getitem__(self, i):
            return i
    with pytest.raises(TypeError):
        NoLen()


def test_tensor_dataset_indexing_and_validation(device):
    ds = labelled(5, device=device)
    x, y = ds[3]
    assert isinstance(x, tg.Tensor) and x.tolist() == [9.0, 10.0, 11.0] and y.item() == 3
    assert len(ds) == 5
    with pytest.raises(ValueError, match=r"\(5, 3\).*\(4,\)"):
        TensorDataset(tg.zeros(5, 3, device=device), tg.zeros(4, device=device))
    with pytest.raises(ValueError):
        TensorDataset()


def test_generic_dataset_is_collated_per_field():
    batches = list(DataLoader(ItemOnly(5), batch_size=2))
    assert [len(b) for b in batches] == [2, 2, 2]
    images, labels = batches[1]
    assert images.shape == (2, 2, 2) and images.dtype == np.float32
    assert labels.dtype == np.int64 and labels.tolist() == [2, 3]
    np.testing.assert_array_equal(images.numpy()[:, 0, 0], [2.0, 3.0])


# ------------------------------------------------------------------------ loader
@given(n=st.integers(1, 40), batch_size=st.integers(1, 12), shuffle=st.booleans(),
       drop_last=st.booleans(), seed=st.integers(0, 2**32))
def test_batches_cover_the_dataset_once(n, batch_size, shuffle, drop_last, seed, device):
    loader = DataLoader(labelled(n, device=device), batch_size=batch_size, shuffle=shuffle,
                        drop_last=drop_last, seed=seed)
    batches = labels_of(loader)
    full, rest = divmod(n, batch_size)
    expected_batches = full if drop_last or rest == 0 else full + 1
    assert len(loader) == len(batches) == expected_batches
    assert all(len(b) == batch_size for b in batches[:full])
    seen = np.concatenate(batches) if batches else np.array([], dtype=np.int64)
    assert len(seen) == (full * batch_size if drop_last else n)
    assert len(set(seen.tolist())) == len(seen)  # no example twice
    if not shuffle:
        np.testing.assert_array_equal(seen, np.arange(len(seen)))
    elif not drop_last:
        np.testing.assert_array_equal(np.sort(seen), np.arange(n))


def test_batches_are_float32_and_int64_tensors():
    ds = ImageDataset(np.zeros((6, 1, 4, 4), np.uint8), np.arange(6), max_value=255)
    x, y = next(iter(DataLoader(ds, batch_size=4)))
    assert isinstance(x, tg.Tensor) and x.dtype == np.float32 and x.shape == (4, 1, 4, 4)
    assert isinstance(y, tg.Tensor) and y.dtype == np.int64 and y.shape == (4,)


def test_array_backed_batches_need_no_per_example_calls(device):
    ds = CountingDataset(tg.zeros(50, 3, device=device), tg.tensor(np.arange(50), device=device))
    for _ in DataLoader(ds, batch_size=8, shuffle=True, seed=0):
        pass
    assert ds.item_calls == 0


def test_shuffle_is_reproducible_new_each_epoch_and_seed_dependent():
    a = DataLoader(labelled(30), batch_size=30, shuffle=True, seed=7)
    b = DataLoader(labelled(30), batch_size=30, shuffle=True, seed=7)
    c = DataLoader(labelled(30), batch_size=30, shuffle=True, seed=8)
    epochs_a = [labels_of(a)[0] for _ in range(3)]
    epochs_b = [labels_of(b)[0] for _ in range(3)]
    for ea, eb in zip(epochs_a, epochs_b):
        np.testing.assert_array_equal(ea, eb)
    assert not np.array_equal(epochs_a[0], epochs_a[1])
    assert not np.array_equal(epochs_a[0], labels_of(c)[0])
    assert not np.array_equal(epochs_a[0], np.arange(30))


def test_default_seed_follows_manual_seed():
    tg.manual_seed(123)
    first = labels_of(DataLoader(labelled(20), batch_size=20, shuffle=True))[0]
    tg.manual_seed(123)
    again = labels_of(DataLoader(labelled(20), batch_size=20, shuffle=True))[0]
    np.testing.assert_array_equal(first, again)


def test_resume_from_state_dict_continues_the_same_sequence():
    reference = DataLoader(labelled(25), batch_size=4, shuffle=True, seed=3)
    runs = [labels_of(reference) for _ in range(4)]
    first = DataLoader(labelled(25), batch_size=4, shuffle=True, seed=3)
    labels_of(first)
    labels_of(first)
    state = first.state_dict()
    assert state == {"seed": 3, "epoch": 2}
    resumed = DataLoader(labelled(25), batch_size=4, shuffle=True, seed=999)
    resumed.load_state_dict(state)
    for expected in runs[2:]:
        got = labels_of(resumed)
        assert all(np.array_equal(g, e) for g, e in zip(got, expected))
    jumped = DataLoader(labelled(25), batch_size=4, shuffle=True, seed=3)
    jumped.set_epoch(3)
    assert all(np.array_equal(g, e) for g, e in zip(labels_of(jumped), runs[3]))


def test_bad_arguments():
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(labelled(3), batch_size=0)
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(labelled(3), batch_size=2.5)
    with pytest.raises(TypeError, match="dataset"):
        DataLoader(42)
    with pytest.raises(ValueError, match="prefetch"):
        DataLoader(labelled(3), prefetch=-1)


# --------------------------------------------------------------------- prefetch
def augmented_dataset(n=37):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(n, 3, 6, 6), dtype=np.uint8)
    return ImageDataset(images, np.arange(n), max_value=255,
                        transform=Compose([RandomCrop(6, padding=2), RandomHorizontalFlip()]))


@pytest.mark.parametrize("prefetch", [1, 2, True])
def test_prefetch_gives_the_same_batches(prefetch):
    kwargs = dict(batch_size=5, shuffle=True, seed=11, transform=Normalize([0.5] * 3, [0.2] * 3))
    plain = DataLoader(augmented_dataset(), **kwargs)
    fetched = DataLoader(augmented_dataset(), prefetch=prefetch, **kwargs)
    for _ in range(2):  # two epochs
        a, b = list(plain), list(fetched)
        assert len(a) == len(b) == 8
        for (xa, ya), (xb, yb) in zip(a, b):
            np.testing.assert_array_equal(xa.numpy(), xb.numpy())
            np.testing.assert_array_equal(ya.numpy(), yb.numpy())


def _prefetch_threads():
    return [t for t in threading.enumerate() if t.name.startswith("tensorgrad-loader")]


def _wait_until_no_prefetch_threads(seconds=5.0):
    deadline = time.monotonic() + seconds
    while _prefetch_threads() and time.monotonic() < deadline:
        gc.collect()
        time.sleep(0.01)
    return _prefetch_threads()


def test_prefetch_thread_stops_when_the_loop_breaks():
    loader = DataLoader(labelled(1000), batch_size=2, prefetch=2)
    for i, _ in enumerate(loader):
        if i == 3:
            assert len(_prefetch_threads()) == 1  # the thread exists while the loop runs
            break
    assert _wait_until_no_prefetch_threads() == []
    it = iter(loader)
    next(it)
    it.close()
    assert _prefetch_threads() == []
    with pytest.raises(StopIteration):
        next(it)


def test_prefetch_thread_ends_with_the_epoch():
    assert len(list(DataLoader(labelled(10), batch_size=3, prefetch=2))) == 4
    assert _wait_until_no_prefetch_threads() == []


def test_errors_in_the_prefetch_thread_reach_the_loop():
    class Broken(TensorDataset):
        def get_batch(self, indices, generator=None):
            if indices[0] >= 4:
                raise RuntimeError("disk gone at example 4")
            return super().get_batch(indices)

    loader = DataLoader(Broken(tg.zeros(10), tg.zeros(10)), batch_size=2, prefetch=2)
    seen = 0
    with pytest.raises(RuntimeError, match="disk gone"):
        for _ in loader:
            seen += 1
    assert seen == 2
    assert _wait_until_no_prefetch_threads() == []


# -------------------------------------------------------------------- transforms
def batch(n=8, c=3, h=5, w=6, seed=0):
    return np.random.default_rng(seed).standard_normal((n, c, h, w)).astype(np.float32)


@given(n=st.integers(1, 6), h=st.integers(1, 6), w=st.integers(1, 6), pad=st.integers(0, 3),
       data=st.data())
def test_random_crop_is_a_window_of_the_padded_image(n, h, w, pad, data, device):
    ch = data.draw(st.integers(1, h + 2 * pad))
    cw = data.draw(st.integers(1, w + 2 * pad))
    x = batch(n, 2, h, w) + 10.0  # nonzero, so padding is recognisable
    out = RandomCrop((ch, cw), padding=pad, generator=data.draw(st.integers(0, 99)))(
        tg.tensor(x, device=device))
    assert isinstance(out, tg.Tensor) and out.shape == (n, 2, ch, cw)
    assert out.dtype == np.float32
    padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    for k in range(n):  # reference: try every offset
        windows = [(i, j) for i in range(h + 2 * pad - ch + 1) for j in range(w + 2 * pad - cw + 1)
                   if np.array_equal(padded[k, :, i:i + ch, j:j + cw], out.numpy()[k])]
        assert windows, f"sample {k} is not a window of its padded image"


def test_random_crop_offsets_differ_per_sample_and_follow_the_generator():
    x = np.broadcast_to(np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4), (64, 1, 4, 4))
    crop = RandomCrop(2, padding=1)
    a = crop(x, generator=np.random.default_rng(5))
    b = crop(x, generator=np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)
    assert len({a[k].tobytes() for k in range(64)}) > 5  # many different windows
    same_size = RandomCrop(4)(x, generator=np.random.default_rng(0))
    np.testing.assert_array_equal(same_size, x)


def test_random_horizontal_flip(device):
    x = batch()
    t = tg.tensor(x, device=device)
    np.testing.assert_array_equal(RandomHorizontalFlip(p=0.0)(t).numpy(), x)
    np.testing.assert_array_equal(RandomHorizontalFlip(p=1.0)(t).numpy(),
                                  x[:, :, :, ::-1])
    big = batch(n=200)
    out = RandomHorizontalFlip(p=0.5, generator=1)(big)
    flipped = [np.array_equal(out[k], big[k, :, :, ::-1]) for k in range(200)]
    kept = [np.array_equal(out[k], big[k]) for k in range(200)]
    assert all(f or k for f, k in zip(flipped, kept))
    assert 60 < sum(flipped) < 140


def test_normalize_per_channel(device):
    x = batch(n=16, c=3) * np.array([1.0, 2.0, 3.0], np.float32).reshape(1, 3, 1, 1) + 5.0
    mean = x.astype(np.float64).mean(axis=(0, 2, 3))
    std = x.astype(np.float64).std(axis=(0, 2, 3))
    out = Normalize(mean.tolist(), std.tolist())(tg.tensor(x, device=device))
    assert out.dtype == np.float32
    o = out.numpy().astype(np.float64)
    np.testing.assert_allclose(o.mean(axis=(0, 2, 3)), 0.0, atol=1e-5)
    np.testing.assert_allclose(o.std(axis=(0, 2, 3)), 1.0, atol=1e-5)
    np.testing.assert_allclose(
        o, (x - mean.reshape(1, 3, 1, 1)) / std.reshape(1, 3, 1, 1), rtol=1e-5, atol=1e-5)


def test_compose_applies_in_order(device):
    x = batch()
    flip_then_norm = Compose([RandomHorizontalFlip(p=1.0), Normalize([1.0] * 3, [2.0] * 3)])
    np.testing.assert_allclose(flip_then_norm(tg.tensor(x, device=device)).numpy(),
                               (x[..., ::-1] - 1.0) / 2.0, rtol=1e-6)
    one_arg_fn = Compose([lambda t: t * 2.0])  # plain callables work inside Compose
    np.testing.assert_allclose(one_arg_fn(tg.tensor(x, device=device)).numpy(), x * 2.0)


def test_transform_errors():
    with pytest.raises(ValueError, match="larger than the padded"):
        RandomCrop(9, padding=1)(batch(h=5, w=6))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\) or one image"):
        RandomHorizontalFlip()(np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match="2 channel means"):
        Normalize([0.0, 0.0], [1.0, 1.0])(batch(c=3))
    with pytest.raises(ValueError, match="non-zero"):
        Normalize([0.0], [0.0])
    with pytest.raises(ValueError, match="p must be"):
        RandomHorizontalFlip(p=1.5)
    with pytest.raises(ValueError, match="padding"):
        RandomCrop(3, padding=-1)


@pytest.mark.gpu
def test_transforms_on_gpu_match_cpu():
    import cupy

    x = batch(n=10)
    t = Compose([RandomCrop(4, padding=1), RandomHorizontalFlip(), Normalize([0.1] * 3,
                                                                             [0.5] * 3)])
    cpu = t(tg.tensor(x), generator=np.random.default_rng(3)).numpy()
    gpu = t(tg.tensor(x).cuda(), generator=np.random.default_rng(3))
    assert isinstance(gpu.data, cupy.ndarray)
    np.testing.assert_allclose(gpu.numpy(), cpu, rtol=1e-6)


def test_transforms_on_the_device_match_the_cpu(device):
    x = batch(n=10)
    t = Compose([RandomCrop(4, padding=1), RandomHorizontalFlip(),
                 Normalize([0.1] * 3, [0.5] * 3)])
    cpu = t(tg.tensor(x), generator=np.random.default_rng(3)).numpy()
    there = t(tg.tensor(x, device=device), generator=np.random.default_rng(3))
    assert there.device == tg.zeros(1, device=device).device
    np.testing.assert_allclose(there.numpy(), cpu, rtol=1e-6)


def test_augmentation_is_a_function_of_seed_and_epoch():
    def images(loader):
        return np.concatenate([x.numpy() for x, _ in loader])

    reference = DataLoader(augmented_dataset(), batch_size=8, shuffle=True, seed=5)
    epochs = [images(reference) for _ in range(3)]
    assert not np.array_equal(epochs[1], epochs[2])
    resumed = DataLoader(augmented_dataset(), batch_size=8, shuffle=True, seed=5)
    resumed.set_epoch(2)
    np.testing.assert_array_equal(images(resumed), epochs[2])


def test_random_crop_padding_in_torchvisions_forms():
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4) + 1
    # (left/right, top/bottom) = (2, 0): the 4x8 crop is the whole padded image
    out = np.asarray(RandomCrop((4, 8), padding=(2, 0))(x))
    np.testing.assert_array_equal(out[0, 0], np.pad(x[0, 0], ((0, 0), (2, 2))))
    # (left, top, right, bottom) = (0, 1, 0, 2): 7 rows, the input's 4 columns
    out = np.asarray(RandomCrop((7, 4), padding=(0, 1, 0, 2))(x))
    np.testing.assert_array_equal(out[0, 0], np.pad(x[0, 0], ((1, 2), (0, 0))))
    with pytest.raises(ValueError, match="left, top, right, bottom"):
        RandomCrop(2, padding=(1, 2, 3))


def test_collate_batches_dicts_nested_tuples_and_strings():
    from tensorgrad.data.dataset import collate
    batch = collate([{"x": np.full(2, i, np.float32), "y": i, "name": f"n{i}"} for i in range(3)])
    assert set(batch) == {"x", "y", "name"}
    np.testing.assert_array_equal(batch["x"].numpy(), [[0, 0], [1, 1], [2, 2]])
    assert batch["y"].dtype == np.int64 and batch["name"] == ["n0", "n1", "n2"]
    (image, label), weight = collate([((np.ones(2), i), 0.5) for i in range(4)])
    assert image.shape == (4, 2) and label.tolist() == [0, 1, 2, 3]
    assert weight.dtype == np.float32
    with pytest.raises(ValueError, match="different keys"):
        collate([{"a": 1}, {"b": 2}])


def test_a_transform_takes_one_image_as_a_batch_of_one(device):
    image = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4) + 1
    flipped = RandomHorizontalFlip(p=1.0)(tg.tensor(image, device=device))
    assert flipped.shape == (2, 3, 4)
    np.testing.assert_array_equal(flipped.numpy(), image[..., ::-1])
    crop = RandomCrop((5, 6), padding=1, generator=0)(image)
    assert crop.shape == (2, 5, 6)
    np.testing.assert_array_equal(crop, np.pad(image, ((0, 0), (1, 1), (1, 1))))
    norm = Normalize([1.0, 2.0], [2.0, 4.0])(image)
    np.testing.assert_allclose(norm, (image - np.array([1.0, 2.0])[:, None, None])
                               / np.array([2.0, 4.0])[:, None, None])


# ------------------------------------------------------------------ worker threads
def images_and_labels(loader) -> tuple[np.ndarray, np.ndarray]:
    batches = list(loader)
    return (np.concatenate([x.numpy() for x, _ in batches]),
            np.concatenate([y.numpy() for _, y in batches]))


class ItemAugmented(Dataset):
    """Augments one image at a time in __getitem__ with a transform that has no generator
    of its own, the way a PyTorch port does it."""

    def __init__(self, n=23):
        self.images = np.random.default_rng(1).standard_normal((n, 2, 5, 5)).astype(np.float32)
        self.augment = Compose([RandomCrop(5, padding=2), RandomHorizontalFlip()])

    def __getitem__(self, i):
        return self.augment(self.images[i]), i

    def __len__(self):
        return len(self.images)


class Uneven(TensorDataset):
    """Later batches are quicker to build, so worker threads finish out of order."""

    def get_batch(self, indices, generator=None):
        time.sleep(0.002 * max(0, 8 - int(indices.min()) // 4))
        return super().get_batch(indices, generator)


@pytest.mark.parametrize("make, kwargs", [
    (augmented_dataset, dict(batch_size=5, shuffle=True,
                             transform=Normalize([0.5] * 3, [0.2] * 3))),
    (ItemAugmented, dict(batch_size=4, shuffle=True)),
    (lambda: Uneven(tg.tensor(np.arange(40.0)), tg.tensor(np.arange(40))),
     dict(batch_size=4, shuffle=False)),
])
def test_every_worker_count_gives_the_same_batches_augmentation_included(make, kwargs):
    runs = {}
    for workers in (0, 1, 3):
        loader = DataLoader(make(), num_workers=workers, seed=21, **kwargs)
        runs[workers] = [images_and_labels(loader) for _ in range(2)]  # two epochs
    for workers in (1, 3):
        for (xa, ya), (xb, yb) in zip(runs[0], runs[workers]):
            np.testing.assert_array_equal(ya, yb)
            np.testing.assert_array_equal(xa, xb)
    if kwargs["shuffle"]:  # and the epochs do differ
        assert not np.array_equal(runs[0][0][0], runs[0][1][0])


def test_batch_b_of_epoch_e_draws_from_its_own_seed_sequence():
    """The documented rule, recomputed by hand: permutation from (seed, e), batch b's
    augmentation from SeedSequence([seed, e], spawn_key=(b,))."""
    data = augmented_dataset(n=12)
    crop_flip = data.transform
    loader = DataLoader(data, batch_size=5, shuffle=True, seed=4, num_workers=2)
    loader.set_epoch(3)
    got = list(loader)
    order = np.random.default_rng([4, 3]).permutation(12)
    assert len(got) == 3
    for b, (x, y) in enumerate(got):
        indices = order[5 * b:5 * b + 5]
        np.testing.assert_array_equal(y.numpy(), indices)
        raw = data.images[indices].astype(np.float32) / np.float32(255)
        rng = np.random.default_rng(np.random.SeedSequence([4, 3], spawn_key=(b,)))
        np.testing.assert_array_equal(x.numpy(), crop_flip(raw, generator=rng))


class Concurrency(TensorDataset):
    """Records how many batches are being built at once, and in which threads."""

    def __init__(self, *tensors):
        super().__init__(*tensors)
        self.lock = threading.Lock()
        self.running = self.most = self.calls = 0
        self.threads = set()

    def get_batch(self, indices, generator=None):
        with self.lock:
            self.running += 1
            self.calls += 1
            self.most = max(self.most, self.running)
            self.threads.add(threading.current_thread().name)
        time.sleep(0.02)  # releases the GIL, as NumPy's array work does
        with self.lock:
            self.running -= 1
        return super().get_batch(indices, generator)


def test_workers_build_batches_concurrently_in_threads():
    ds = Concurrency(tg.zeros(24, 2), tg.tensor(np.arange(24)))
    labels = np.concatenate(labels_of(DataLoader(ds, batch_size=2, num_workers=3)))
    np.testing.assert_array_equal(labels, np.arange(24))  # in order
    assert ds.most >= 2, "batches were never built at the same time"
    assert ds.most <= 3
    assert all(name.startswith("tensorgrad-loader") for name in ds.threads), ds.threads
    assert _wait_until_no_prefetch_threads() == []
    serial = Concurrency(tg.zeros(6, 2), tg.tensor(np.arange(6)))
    labels_of(DataLoader(serial, batch_size=2))
    assert serial.threads == {threading.current_thread().name}


def test_workers_keep_only_prefetch_factor_batches_per_worker_in_flight():
    ds = Concurrency(tg.zeros(100, 2), tg.tensor(np.arange(100)))
    it = iter(DataLoader(ds, batch_size=2, num_workers=2, prefetch_factor=3))
    next(it)
    time.sleep(0.2)  # ample time for the workers to run ahead as far as they may
    assert ds.calls == 2 * 3 + 1  # six in flight, plus the one handed out
    it.close()
    assert _prefetch_threads() == []


def test_worker_errors_reach_the_loop_after_the_batches_before_them():
    class Broken(TensorDataset):
        def get_batch(self, indices, generator=None):
            if indices[0] >= 6:
                raise RuntimeError("disk gone at example 6")
            return super().get_batch(indices)

    loader = DataLoader(Broken(tg.zeros(20), tg.zeros(20)), batch_size=2, num_workers=3)
    seen = 0
    with pytest.raises(RuntimeError, match="disk gone"):
        for _ in loader:
            seen += 1
    assert seen == 3
    assert _wait_until_no_prefetch_threads() == []


def test_worker_threads_stop_when_the_loop_breaks():
    loader = DataLoader(labelled(1000), batch_size=2, num_workers=3)
    for i, _ in enumerate(loader):
        if i == 2:
            assert _prefetch_threads()
            break
    assert _wait_until_no_prefetch_threads() == []


def test_pinned_batches_reach_the_device_unchanged(device):
    """pin_memory=True with CUDA available (on CI: the CuPy stand-in) pins host batches,
    which then move to the device with the same values."""
    plain = images_and_labels(DataLoader(augmented_dataset(), batch_size=8, seed=2))
    loader = DataLoader(augmented_dataset(), batch_size=8, seed=2, pin_memory=True)
    moved = [(x.to(device), y.to(device)) for x, y in loader]
    assert all(x.device == y.device == tg.zeros(1, device=device).device for x, y in moved)
    np.testing.assert_array_equal(np.concatenate([x.numpy() for x, _ in moved]), plain[0])
    np.testing.assert_array_equal(np.concatenate([y.numpy() for _, y in moved]), plain[1])


def test_pin_memory_without_cuda_changes_nothing():
    plain = images_and_labels(DataLoader(augmented_dataset(), batch_size=8, seed=2))
    pinned_loader = DataLoader(augmented_dataset(), batch_size=8, seed=2, pin_memory=True,
                               num_workers=2)
    assert pinned_loader.pin_memory
    pinned = images_and_labels(pinned_loader)
    np.testing.assert_array_equal(plain[0], pinned[0])
    np.testing.assert_array_equal(plain[1], pinned[1])


@pytest.mark.gpu
def test_pin_memory_puts_batches_in_page_locked_memory():
    import cupy

    loader = DataLoader(augmented_dataset(), batch_size=8, seed=2, pin_memory=True)
    x, y = next(iter(loader))
    plain_x, _ = next(iter(DataLoader(augmented_dataset(), batch_size=8, seed=2)))
    np.testing.assert_array_equal(x.numpy(), plain_x.numpy())
    for t in (x, y):
        assert isinstance(t.data, np.ndarray)
        # cupyx.empty_pinned builds the array on a page-locked buffer
        assert isinstance(t.data.base, cupy.cuda.PinnedMemoryPointer)
    np.testing.assert_array_equal(x.cuda().numpy(), plain_x.numpy())


# ---------------------------------------------------------- samplers, collate_fn
def test_sampler_gives_the_order_and_the_length():
    order = [7, 2, 9, 0, 4, 4, 1]  # any iterable of indices, repeats allowed
    loader = DataLoader(labelled(10), batch_size=3, sampler=order)
    assert len(loader) == 3
    assert [b.tolist() for b in labels_of(loader)] == [[7, 2, 9], [0, 4, 4], [1]]
    dropped = DataLoader(labelled(10), batch_size=3, sampler=order, drop_last=True)
    assert len(dropped) == 2
    assert [b.tolist() for b in labels_of(dropped)] == [[7, 2, 9], [0, 4, 4]]
    threaded = DataLoader(labelled(10), batch_size=3, sampler=np.array(order), num_workers=2)
    assert [b.tolist() for b in labels_of(threaded)] == [[7, 2, 9], [0, 4, 4], [1]]


def test_sampler_is_iterated_afresh_each_epoch():
    class Reversed:
        def __init__(self, n):
            self.n, self.epoch = n, 0

        def set_epoch(self, epoch):  # the training loop's job, as in PyTorch
            self.epoch = epoch

        def __iter__(self):
            return iter(range(self.n - 1 - self.epoch, -1, -1))

        def __len__(self):
            return self.n - self.epoch

    sampler = Reversed(5)
    loader = DataLoader(labelled(5), batch_size=2, sampler=sampler)
    assert [b.tolist() for b in labels_of(loader)] == [[4, 3], [2, 1], [0]]
    sampler.set_epoch(2)
    assert len(loader) == 2
    assert [b.tolist() for b in labels_of(loader)] == [[2, 1], [0]]


def test_sampler_without_len_iterates_but_has_no_length():
    class Evens:
        def __iter__(self):
            return iter(range(0, 10, 2))

    loader = DataLoader(labelled(10), batch_size=2, sampler=Evens())
    assert [b.tolist() for b in labels_of(loader)] == [[0, 2], [4, 6], [8]]
    with pytest.raises(TypeError):
        len(loader)


def test_batch_sampler_gives_each_batch():
    batches = [[3, 1], [0, 2, 4], [5]]
    loader = DataLoader(labelled(6), batch_sampler=batches, num_workers=2)
    assert len(loader) == 3
    assert [b.tolist() for b in labels_of(loader)] == batches


def test_sampler_argument_errors():
    with pytest.raises(ValueError, match="mutually exclusive with shuffle"):
        DataLoader(labelled(4), sampler=[0, 1], shuffle=True)
    for bad in (dict(batch_size=2), dict(shuffle=True), dict(sampler=[0]),
                dict(drop_last=True)):
        with pytest.raises(ValueError, match="batch_sampler option is mutually exclusive"):
            DataLoader(labelled(4), batch_sampler=[[0, 1]], **bad)
    with pytest.raises(TypeError, match="sampler must be an iterable"):
        DataLoader(labelled(4), sampler=3)
    with pytest.raises(TypeError, match="int indices"):
        list(DataLoader(labelled(4), sampler=[0.5, 1.5]))


def test_collate_fn_gets_the_list_of_examples():
    seen = []

    def keep(examples):
        seen.append(examples)
        return len(examples)

    loader = DataLoader(ItemOnly(5), batch_size=2, collate_fn=keep, num_workers=2)
    assert list(loader) == [2, 2, 1]
    assert [[label for _, label in ex] for ex in seen] == [[0, 1], [2, 3], [4]]
    assert isinstance(seen[0][0][0], np.ndarray)  # the examples as __getitem__ made them
    # on an array-backed dataset too: collate_fn means per-example __getitem__
    ds = CountingDataset(tg.zeros(6, 3), tg.tensor(np.arange(6)))
    out = list(DataLoader(ds, batch_size=3, collate_fn=lambda ex: [int(y) for _, y in ex]))
    assert out == [[0, 1, 2], [3, 4, 5]] and ds.item_calls == 6
    with pytest.raises(TypeError, match="collate_fn"):
        DataLoader(ds, collate_fn="stack")


def test_collate_fn_batches_are_the_same_for_every_worker_count():
    def stack(examples):
        return (np.stack([np.asarray(x.data) for x, _ in examples]),
                np.array([int(y) for _, y in examples]))

    runs = [list(DataLoader(augmented_dataset(11), batch_size=3, shuffle=True, seed=5,
                            collate_fn=stack, num_workers=k)) for k in (0, 2)]
    for (xa, ya), (xb, yb) in zip(*runs):
        np.testing.assert_array_equal(ya, yb)
        np.testing.assert_array_equal(xa, xb)


def test_worker_argument_errors():
    with pytest.raises(ValueError, match="num_workers"):
        DataLoader(labelled(3), num_workers=-1)
    with pytest.raises(ValueError, match="num_workers"):
        DataLoader(labelled(3), num_workers=1.5)
    with pytest.raises(ValueError, match="prefetch_factor"):
        DataLoader(labelled(3), prefetch_factor=2)
    with pytest.raises(ValueError, match="prefetch_factor"):
        DataLoader(labelled(3), num_workers=2, prefetch_factor=0)
    with pytest.raises(ValueError, match="prefetch_factor"):
        DataLoader(labelled(3), num_workers=2, prefetch=2)


# --------------------------------------------------------- Subset, random_split
def test_subset_maps_indices_and_batches_with_one_gather(device):
    from tensorgrad.data import Subset

    ds = CountingDataset(tg.tensor(np.arange(20.0).reshape(10, 2), device=device),
                         tg.tensor(np.arange(10), device=device))
    sub = Subset(ds, [8, 1, -1, 3])
    assert len(sub) == 4
    assert sub[0][1].item() == 8 and sub[2][1].item() == 9
    assert [y.item() for _, y in sub[[1, 3]]] == [1, 3]
    before = ds.item_calls
    batches = labels_of(DataLoader(sub, batch_size=3, num_workers=2))
    assert [b.tolist() for b in batches] == [[8, 1, 9], [3]]
    assert ds.item_calls == before  # through the parent's get_batch
    augmented = Subset(augmented_dataset(10), [4, 2])
    x, y = augmented.get_batch(np.array([1, 0]), generator=np.random.default_rng(0))
    assert y.tolist() == [2, 4] and x.shape == (2, 3, 6, 6)
    with pytest.raises(IndexError, match="10"):
        Subset(ds, [0, 10])
    with pytest.raises(TypeError, match="indices"):
        Subset(ds, [0.5])


def test_random_split_partitions_the_dataset_reproducibly():
    from tensorgrad.data import random_split

    parts = random_split(labelled(10), [3, 7], generator=0)
    assert [len(p) for p in parts] == [3, 7]
    got = [np.concatenate(labels_of(DataLoader(p, batch_size=10))) for p in parts]
    assert sorted(np.concatenate(got).tolist()) == list(range(10))
    again = random_split(labelled(10), [3, 7], generator=np.random.default_rng(0))
    assert [p.indices for p in again] == [p.indices for p in parts]
    assert parts[0].indices + parts[1].indices == np.random.default_rng(0).permutation(10).tolist()
    tg.manual_seed(5)
    a = [p.indices for p in random_split(labelled(10), [5, 5])]
    tg.manual_seed(5)
    assert [p.indices for p in random_split(labelled(10), [5, 5])] == a


@pytest.mark.parametrize("n, fractions, expected", [
    # floor(fraction * n), then the remainder one at a time from the first split
    (10, [0.3, 0.3, 0.4], [3, 3, 4]),
    (11, [0.5, 0.5], [6, 5]),
    (7, [0.2, 0.3, 0.5], [2, 2, 3]),
    (9, [0.25, 0.25, 0.25, 0.25], [3, 2, 2, 2]),
])
def test_random_split_fractions_as_pytorch(n, fractions, expected):
    from tensorgrad.data import random_split

    assert [len(p) for p in random_split(labelled(n), fractions, generator=1)] == expected


def test_random_split_errors():
    from tensorgrad.data import random_split

    with pytest.raises(ValueError, match=r"sum of input lengths \(9\).*\(10\)"):
        random_split(labelled(10), [4, 5])
    with pytest.raises(ValueError, match="between 0 and 1"):
        random_split(labelled(10), [1.5, -0.5])
    with pytest.warns(UserWarning) as record:
        parts = random_split(labelled(2), [0.9, 0.05, 0.05], generator=0)
    assert [len(p) for p in parts] == [2, 0, 0]
    assert ["index 1 is 0" in str(w.message) for w in record] == [True, False]
    assert "index 2 is 0" in str(record[1].message)
