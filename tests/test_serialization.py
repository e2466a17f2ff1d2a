"""tg.save / tg.load: round trips, the file format (zip + JSON, no pickle), atomic
writes, clear errors for bad objects and bad files, map_location."""

from __future__ import annotations

import json
import os
import pickle
import zipfile

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tensorgrad as tg
from tensorgrad import serialization

DTYPES = ["float16", "float32", "float64", "int32", "int64", "bool", "uint8"]


def assert_same(a, b, where="obj"):
    """Deep equality that also checks types exactly (tuple vs list, Tensor vs array,
    int vs bool, dtypes, requires_grad)."""
    assert type(a) is type(b), f"{where}: {type(a)} != {type(b)}"
    if isinstance(a, tg.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape, where
        assert a.requires_grad == b.requires_grad, where
        assert a.device == b.device, where
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=where)
    elif isinstance(a, (np.ndarray, np.generic)):
        assert a.dtype == b.dtype and np.shape(a) == np.shape(b), where
        np.testing.assert_array_equal(a, b, err_msg=where)
    elif isinstance(a, dict):
        assert list(a.keys()) == list(b.keys()), where
        for k in a:
            assert type(k) is type(next(kb for kb in b if kb == k)), where
            assert_same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def roundtrip(obj, tmp_path, **load_kwargs):
    path = tmp_path / "obj.npz"
    tg.save(obj, path)
    return tg.load(path, **load_kwargs)


# ------------------------------------------------------------------- round trips
arrays = hnp.arrays(
    dtype=st.sampled_from([np.dtype(d) for d in DTYPES]),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3),
    elements={"allow_nan": False},
)
tensors = arrays.map(lambda a: tg.tensor(a))
leaves = (st.none() | st.booleans() | st.integers(-2**70, 2**70)
          | st.floats(allow_nan=False) | st.text(max_size=5) | arrays | tensors
          | st.sampled_from([np.float32(1.5), np.int64(-3), np.bool_(True)]))
keys = st.text(max_size=4) | st.integers(-5, 5)
structures = st.recursive(
    leaves,
    lambda inner: (st.lists(inner, max_size=3) | st.lists(inner, max_size=3).map(tuple)
                   | st.dictionaries(keys, inner, max_size=3)),
    max_leaves=8,
)


@given(obj=structures)
def test_roundtrip_of_any_nesting(obj, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("rt")
    assert_same(obj, roundtrip(obj, tmp_path))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(), (0,), (0, 3), (2, 3, 1)])
def test_dtypes_and_shapes_preserved(dtype, shape, tmp_path, device):
    a = (np.arange(int(np.prod(shape))) % 3).reshape(shape).astype(dtype)
    back = roundtrip({"t": tg.tensor(a, device=device), "a": a}, tmp_path)
    assert isinstance(back["t"], tg.Tensor) and type(back["a"]) is np.ndarray
    for got in (back["t"].numpy(), back["a"]):
        assert got.dtype == np.dtype(dtype) and got.shape == shape
        np.testing.assert_array_equal(got, a)


def test_tensor_flags_and_state_dict_like_objects(tmp_path, device):
    w = tg.randn(3, 2, requires_grad=True, device=device)
    (w * 2).sum().backward()
    y = w * 3  # a non-leaf: its values are saved, not its graph
    ckpt = {"model": {"fc.weight": w, "fc.bias": tg.zeros(3, device=device)},
            "optimizer": {"state": {0: {"step": 5, "momentum": np.ones(2)}},
                          "param_groups": [{"lr": 0.1, "params": [0, 1], "nesterov": False}]},
            "y": y, "epoch": 7, "best": 0.9875, "name": "resnet20", "scheduler": None}
    back = roundtrip(ckpt, tmp_path)
    assert back["model"]["fc.weight"].requires_grad and back["model"]["fc.weight"].grad is None
    assert not back["model"]["fc.bias"].requires_grad
    assert back["y"].is_leaf and back["y"].requires_grad
    np.testing.assert_array_equal(back["y"].numpy(), w.numpy() * 3)
    assert list(back["optimizer"]["state"]) == [0]  # int key stays an int
    assert back["optimizer"]["param_groups"][0] == {"lr": 0.1, "params": [0, 1],
                                                    "nesterov": False}
    assert (back["epoch"], back["best"], back["name"], back["scheduler"]) == \
        (7, 0.9875, "resnet20", None)


def test_int_and_str_keys_that_look_alike_stay_apart(tmp_path):
    back = roundtrip({1: "int", "1": "str"}, tmp_path)
    assert back[1] == "int" and back["1"] == "str"


def test_loaded_arrays_are_independent_of_the_saved_ones(tmp_path, device):
    a = np.arange(4.0)
    t = tg.tensor(a.copy(), device=device)
    back = roundtrip([a, t], tmp_path)
    a[0] = 100.0
    t.data[0] = 100.0
    assert back[0][0] == 0.0 and back[1].numpy()[0] == 0.0


# ------------------------------------------------------------------------ format
def test_file_is_a_zip_with_json_structure_and_no_pickle(tmp_path, device):
    path = tmp_path / "ckpt.npz"
    tg.save({"w": tg.ones(2, 2, device=device), "a": np.arange(3), "n": [1, 2.5, "x"]}, path)
    assert zipfile.is_zipfile(path)
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        structure = json.loads(zf.read("structure.json"))
    assert "structure.json" in names
    assert structure["format"] == "tensorgrad"
    with np.load(path, allow_pickle=False) as npz:  # raises if any member needs pickle
        members = {name: npz[name] for name in npz.files}
    arrays = [v for k, v in members.items() if k != "structure.json"]
    assert len(arrays) == 2 and all(isinstance(a, np.ndarray) for a in arrays)
    assert all(not a.dtype.hasobject for a in arrays)


def test_path_is_used_exactly_as_given(tmp_path):
    tg.save({"x": 1}, tmp_path / "checkpoint")
    tg.save({"x": 2}, str(tmp_path / "other.bin"))
    assert sorted(os.listdir(tmp_path)) == ["checkpoint", "other.bin"]
    assert tg.load(tmp_path / "checkpoint") == {"x": 1}
    assert tg.load(str(tmp_path / "other.bin")) == {"x": 2}


# ------------------------------------------------------------- bad objects to save
@pytest.mark.parametrize("obj, where", [
    ({"model": {"fc.weight": object()}}, "obj['model']['fc.weight']"),
    ({"a": [1, {2, 3}]}, "obj['a'][1]"),
    ([b"bytes"], "obj[0]"),
    ({"x": np.array([None, 1], dtype=object)}, "obj['x']"),
    ({(1, 2): 3}, "obj"),
    ({True: 3}, "obj"),
    (lambda: 0, "obj"),
])
def test_unsupported_values_raise_type_error_naming_the_key_path(obj, where, tmp_path):
    path = tmp_path / "ckpt.npz"
    with pytest.raises(TypeError) as info:
        tg.save(obj, path)
    assert where in str(info.value)
    assert os.listdir(tmp_path) == []  # validated before anything was written


def test_failed_validation_leaves_an_existing_file_alone(tmp_path):
    path = tmp_path / "ckpt.npz"
    tg.save({"epoch": 1}, path)
    before = path.read_bytes()
    with pytest.raises(TypeError):
        tg.save({"epoch": 2, "bad": object()}, path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["ckpt.npz"]


def test_cycles_are_refused(tmp_path):
    a: list = [1]
    a.append(a)
    with pytest.raises(ValueError, match="contains itself"):
        tg.save(a, tmp_path / "c.npz")


def test_shared_leaves_are_not_cycles(tmp_path):
    x = [1, 2]
    assert roundtrip({"a": x, "b": x}, tmp_path) == {"a": [1, 2], "b": [1, 2]}


# --------------------------------------------------------------------- atomicity
def _fail_after(n_calls, original):
    calls = {"n": 0}

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > n_calls:
            raise OSError("disk full (simulated)")
        return original(*args, **kwargs)
    return failing


@pytest.mark.parametrize("target, n_ok, error", [
    ("write_array", 1, OSError),         # fails while writing the second array
    ("replace", 0, OSError),             # everything written, the rename fails
    ("fsync", 0, OSError),
    ("write_array_interrupt", 1, KeyboardInterrupt),
])
def test_failed_write_keeps_the_old_file_and_leaves_no_temp_file(target, n_ok, error,
                                                                  tmp_path, monkeypatch, device):
    path = tmp_path / "ckpt.npz"
    tg.save({"epoch": 1, "w": tg.ones(3, device=device)}, path)
    before = path.read_bytes()
    if target.startswith("write_array"):
        original = np.lib.format.write_array
        failing = _fail_after(n_ok, original)
        if error is KeyboardInterrupt:
            def failing(*a, _f=failing, **k):
                try:
                    return _f(*a, **k)
                except OSError:
                    raise KeyboardInterrupt from None
        monkeypatch.setattr(np.lib.format, "write_array", failing)
    else:
        monkeypatch.setattr(serialization.os, target, _fail_after(n_ok, getattr(os, target)))
    with pytest.raises(error):
        tg.save({"epoch": 2, "w": tg.zeros(3, device=device),
                 "v": tg.zeros(2, device=device)}, path)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["ckpt.npz"]
    assert path.read_bytes() == before
    assert tg.load(path)["epoch"] == 1


def test_failed_first_write_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(serialization.os, "replace", _fail_after(0, os.replace))
    with pytest.raises(OSError):
        tg.save({"w": tg.ones(2)}, tmp_path / "new.npz")
    assert os.listdir(tmp_path) == []


# -------------------------------------------------------------------- bad files
def _valid_file(tmp_path):
    path = tmp_path / "ckpt.npz"
    tg.save({"w": tg.randn(50, 50), "epoch": 3}, path)
    return path


@pytest.mark.parametrize("damage", ["truncate_half", "truncate_tail", "empty", "garbage",
                                    "flip_array_bytes", "bad_json"])
def test_damaged_file_raises_value_error_naming_it(damage, tmp_path):
    path = _valid_file(tmp_path)
    raw = bytearray(path.read_bytes())
    if damage == "truncate_half":
        raw = raw[: len(raw) // 2]
    elif damage == "truncate_tail":
        raw = raw[:-10]
    elif damage == "empty":
        raw = bytearray()
    elif damage == "garbage":
        raw = bytearray(b"this is not a checkpoint" * 10)
    elif damage == "flip_array_bytes":
        at = len(raw) // 3  # inside the 50x50 float32 array's data
        raw[at:at + 8] = bytes(b ^ 0xFF for b in raw[at:at + 8])
    elif damage == "bad_json":
        with zipfile.ZipFile(tmp_path / "b.npz", "w") as zf:
            zf.writestr("structure.json", "{not json")
        raw = bytearray((tmp_path / "b.npz").read_bytes())
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError) as info:
        tg.load(path)
    assert str(path) in str(info.value)


def test_npz_without_structure_is_refused(tmp_path):
    path = tmp_path / "plain.npz"
    np.savez(path, a=np.arange(3))
    with pytest.raises(ValueError, match="structure.json"):
        tg.load(path)


def test_missing_file_raises_file_not_found_naming_it(tmp_path):
    path = tmp_path / "nope.npz"
    with pytest.raises(FileNotFoundError) as info:
        tg.load(path)
    assert str(path) in str(info.value)


class _RunsCode:
    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_in_disguise_is_not_executed(tmp_path):
    marker = tmp_path / "pwned"
    evil = _RunsCode()
    evil.marker = marker
    path = tmp_path / "evil.npz"
    path.write_bytes(pickle.dumps({"w": evil}))
    with pytest.raises(ValueError) as info:
        tg.load(path)
    assert str(path) in str(info.value)
    assert not marker.exists()


# ------------------------------------------------------------------ map_location
def test_map_location_cpu(tmp_path, device):
    back = roundtrip({"w": tg.ones(2, device=device), "a": np.zeros(2)}, tmp_path,
                     map_location="cpu")
    assert back["w"].device == "cpu" and type(back["a"]) is np.ndarray


def test_tensors_come_back_on_their_device_or_where_mapped(tmp_path, device):
    w = tg.randn(3, 3, device=device)
    xp = tg.get_array_module(w.data)
    obj = {"w": w, "a": xp.arange(3), "h": np.arange(2)}  # a raw device array, a host one
    tg.save(obj, tmp_path / "dev.npz")
    back = tg.load(tmp_path / "dev.npz")
    assert back["w"].device == w.device and type(back["a"]) is type(obj["a"])
    assert type(back["h"]) is np.ndarray
    np.testing.assert_array_equal(back["w"].numpy(), w.numpy())
    cpu = tg.load(tmp_path / "dev.npz", map_location="cpu")
    assert cpu["w"].device == "cpu" and type(cpu["a"]) is np.ndarray
    np.testing.assert_array_equal(cpu["a"], [0, 1, 2])
    tg.save({"w": w.cpu()}, tmp_path / "host.npz")
    there = tg.load(tmp_path / "host.npz", map_location=device)
    assert there["w"].device == w.device
    np.testing.assert_array_equal(there["w"].numpy(), w.numpy())


def test_bad_map_location_raises_before_reading(tmp_path):
    path = _valid_file(tmp_path)
    with pytest.raises(ValueError, match="unknown device"):
        tg.load(path, map_location="tpu")
    if not tg.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            tg.load(path, map_location="cuda")


@pytest.mark.gpu
def test_cuda_tensors_come_back_on_cuda_or_where_mapped(tmp_path):
    import cupy

    w = tg.randn(3, 3).cuda()
    obj = {"w": w, "a": cupy.arange(3), "h": np.arange(2)}
    path = tmp_path / "gpu.npz"
    tg.save(obj, path)
    back = tg.load(path)
    assert back["w"].device == "cuda:0" and isinstance(back["a"], cupy.ndarray)
    assert type(back["h"]) is np.ndarray
    np.testing.assert_array_equal(back["w"].numpy(), w.numpy())
    cpu = tg.load(path, map_location="cpu")
    assert cpu["w"].device == "cpu" and type(cpu["a"]) is np.ndarray
    gpu = tg.load(tmp_path / "gpu.npz", map_location="cuda")
    assert type(gpu["h"]) is np.ndarray and gpu["w"].device == "cuda:0"


def test_save_into_a_missing_folder_names_the_target(tmp_path):
    target = tmp_path / "nope" / "x.npz"
    with pytest.raises(FileNotFoundError, match="x.npz"):
        tg.save({"a": tg.ones(2)}, target)


def test_load_refuses_an_absurdly_deep_structure(tmp_path):
    import io
    import zipfile
    deep = '{"format": "tensorgrad", "version": 1, "root": ' + "[" * 100000 + "]" * 100000 + "}"
    buf = io.BytesIO()
    np.save(buf, np.array(deep))
    with zipfile.ZipFile(tmp_path / "deep.npz", "w") as z:
        z.writestr("structure.json.npy", buf.getvalue())
    with pytest.raises(ValueError, match="corrupt"):
        tg.load(tmp_path / "deep.npz")
