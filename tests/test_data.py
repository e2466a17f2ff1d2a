"""tg.data: Dataset, TensorDataset, DataLoader (batching, shuffling, seeds, resume,
prefetch) and the batch transforms."""

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


def labelled(n: int, features: int = 3) -> TensorDataset:
    """A dataset whose label is the example's index, so batches reveal the order."""
    x = np.arange(n * features, dtype=np.float32).reshape(n, features)
    return TensorDataset(tg.tensor(x), tg.tensor(np.arange(n)))


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


def test_tensor_dataset_indexing_and_validation():
    ds = labelled(5)
    x, y = ds[3]
    assert isinstance(x, tg.Tensor) and x.tolist() == [9.0, 10.0, 11.0] and y.item() == 3
    assert len(ds) == 5
    with pytest.raises(ValueError, match=r"\(5, 3\).*\(4,\)"):
        TensorDataset(tg.zeros(5, 3), tg.zeros(4))
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
def test_batches_cover_the_dataset_once(n, batch_size, shuffle, drop_last, seed):
    loader = DataLoader(labelled(n), batch_size=batch_size, shuffle=shuffle,
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


def test_array_backed_batches_need_no_per_example_calls():
    ds = CountingDataset(tg.zeros(50, 3), tg.tensor(np.arange(50)))
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
    return [t for t in threading.enumerate() if t.name == "tensorgrad-prefetch"]


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
def test_random_crop_is_a_window_of_the_padded_image(n, h, w, pad, data):
    ch = data.draw(st.integers(1, h + 2 * pad))
    cw = data.draw(st.integers(1, w + 2 * pad))
    x = batch(n, 2, h, w) + 10.0  # nonzero, so padding is recognisable
    out = RandomCrop((ch, cw), padding=pad, generator=data.draw(st.integers(0, 99)))(
        tg.tensor(x))
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


def test_random_horizontal_flip():
    x = batch()
    np.testing.assert_array_equal(RandomHorizontalFlip(p=0.0)(tg.tensor(x)).numpy(), x)
    np.testing.assert_array_equal(RandomHorizontalFlip(p=1.0)(tg.tensor(x)).numpy(),
                                  x[:, :, :, ::-1])
    big = batch(n=200)
    out = RandomHorizontalFlip(p=0.5, generator=1)(big)
    flipped = [np.array_equal(out[k], big[k, :, :, ::-1]) for k in range(200)]
    kept = [np.array_equal(out[k], big[k]) for k in range(200)]
    assert all(f or k for f, k in zip(flipped, kept))
    assert 60 < sum(flipped) < 140


def test_normalize_per_channel():
    x = batch(n=16, c=3) * np.array([1.0, 2.0, 3.0], np.float32).reshape(1, 3, 1, 1) + 5.0
    mean = x.astype(np.float64).mean(axis=(0, 2, 3))
    std = x.astype(np.float64).std(axis=(0, 2, 3))
    out = Normalize(mean.tolist(), std.tolist())(tg.tensor(x))
    assert out.dtype == np.float32
    o = out.numpy().astype(np.float64)
    np.testing.assert_allclose(o.mean(axis=(0, 2, 3)), 0.0, atol=1e-5)
    np.testing.assert_allclose(o.std(axis=(0, 2, 3)), 1.0, atol=1e-5)
    np.testing.assert_allclose(
        o, (x - mean.reshape(1, 3, 1, 1)) / std.reshape(1, 3, 1, 1), rtol=1e-5, atol=1e-5)


def test_compose_applies_in_order():
    x = batch()
    flip_then_norm = Compose([RandomHorizontalFlip(p=1.0), Normalize([1.0] * 3, [2.0] * 3)])
    np.testing.assert_allclose(flip_then_norm(tg.tensor(x)).numpy(),
                               (x[..., ::-1] - 1.0) / 2.0, rtol=1e-6)
    one_arg_fn = Compose([lambda t: t * 2.0])  # plain callables work inside Compose
    np.testing.assert_allclose(one_arg_fn(tg.tensor(x)).numpy(), x * 2.0)


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


def test_a_transform_takes_one_image_as_a_batch_of_one():
    image = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4) + 1
    flipped = RandomHorizontalFlip(p=1.0)(tg.tensor(image))
    assert flipped.shape == (2, 3, 4)
    np.testing.assert_array_equal(flipped.numpy(), image[..., ::-1])
    crop = RandomCrop((5, 6), padding=1, generator=0)(image)
    assert crop.shape == (2, 5, 6)
    np.testing.assert_array_equal(crop, np.pad(image, ((0, 0), (1, 1), (1, 1))))
    norm = Normalize([1.0, 2.0], [2.0, 4.0])(image)
    np.testing.assert_allclose(norm, (image - np.array([1.0, 2.0])[:, None, None])
                               / np.array([2.0, 4.0])[:, None, None])
