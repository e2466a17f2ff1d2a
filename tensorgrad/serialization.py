"""``tg.save`` / ``tg.load``: checkpoints as one ``.npz`` file, never pickle.

A checkpoint is a zip archive that ``np.load(path, allow_pickle=False)`` opens:

    array_0.npy, array_1.npy, ...   every array (tensor values, NumPy arrays), in NumPy's
                                    ``.npy`` format, written with ``allow_pickle=False``
    structure.json                  the nesting: dicts, lists, tuples, plain values, and
                                    for each array leaf whether it was a Tensor (with its
                                    device and ``requires_grad``) or a NumPy/CuPy array

Loading parses JSON and reads raw array bytes, so a file can never run code (pickle
can). Writing is atomic: the archive goes to a temporary file in the destination's
folder, is flushed to disk, then ``os.replace`` swaps it in with one rename, so a
crash or a kill leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import zipfile
from typing import Any

import numpy as np

from . import backend
from .tensor import Tensor

FORMAT_NAME = "tensorgrad"
FORMAT_VERSION = 1
STRUCTURE_MEMBER = "structure.json"


# ------------------------------------------------------------------ encoding
def _encode(obj: Any, where: str, arrays: list[np.ndarray], active: set[int]) -> Any:
    """The JSON node for ``obj``; arrays go to ``arrays`` and are named by index.

    Plain JSON values stand for themselves; everything else is a ``{"kind": ...}``
    object. ``where`` is the key path used in error messages, e.g. ``obj['model'][3]``.
    """
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, Tensor):
        return {"kind": "tensor", "array": _add_array(obj.data, where, arrays),
                "device": str(obj.device), "requires_grad": obj.requires_grad}
    if isinstance(obj, np.ndarray) or backend.is_cupy_array(obj):
        return {"kind": "ndarray", "array": _add_array(obj, where, arrays),
                "device": str(backend.device_of(obj))}
    if isinstance(obj, np.generic):  # np.float32(1.5), np.int64(3), np.bool_(True)
        return {"kind": "numpy_scalar", "array": _add_array(np.asarray(obj), where, arrays)}
    if isinstance(obj, (dict, list, tuple)):
        if id(obj) in active:
            raise ValueError(f"save: {where} contains itself; cannot save a cyclic structure")
        active.add(id(obj))
        try:
            if isinstance(obj, dict):
                items = []
                for key, value in obj.items():
                    # bool is an int subclass, but True/1 would collide as JSON keys
                    if isinstance(key, bool) or not isinstance(key, (str, int)):
                        raise TypeError(
                            f"save: {where} has a key {key!r} of type {type(key).__name__}; "
                            "only str and int keys are supported"
                        )
                    items.append([key, _encode(value, f"{where}[{key!r}]", arrays, active)])
                return {"kind": "dict", "items": items}
            kind = "list" if isinstance(obj, list) else "tuple"
            return {"kind": kind, "items": [_encode(v, f"{where}[{i}]", arrays, active)
                                            for i, v in enumerate(obj)]}
        finally:
            active.discard(id(obj))
    raise TypeError(
        f"save: {where} is a {type(obj).__module__}.{type(obj).__qualname__}, which cannot "
        "be saved; supported: Tensor, NumPy/CuPy arrays and scalars, int, float, bool, "
        "str, None, and dicts/lists/tuples of these"
    )


def _add_array(a: Any, where: str, arrays: list[np.ndarray]) -> str:
    host = backend.to_numpy(a)
    if host.dtype.hasobject:
        raise TypeError(f"save: {where} has dtype {host.dtype}; object arrays need pickle "
                        "and cannot be saved")
    arrays.append(host)
    return f"array_{len(arrays) - 1}"


def _write_archive(f, structure: dict, arrays: list[np.ndarray]) -> None:
    # What np.savez does, plus one member that is not an array: the JSON structure.
    with zipfile.ZipFile(f, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for i, a in enumerate(arrays):
            with zf.open(f"array_{i}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, a, allow_pickle=False)
        zf.writestr(STRUCTURE_MEMBER, json.dumps(structure, indent=1))


def save(obj: Any, path: str | os.PathLike) -> None:
    """Save ``obj`` (nested dicts/lists/tuples of Tensors, arrays and plain values) to
    ``path``, exactly that name (no suffix is added; ``.npz`` is the convention).

    The whole object is checked first: an unsupported value raises TypeError naming
    its key path (``obj['model']['fc.weight']``) before anything is written. The write
    is atomic; if it fails, an existing file at ``path`` is left as it was and no
    temporary file remains. Tensor gradients and graphs are not saved, only values.
    """
    path = os.fspath(path)
    arrays: list[np.ndarray] = []
    structure = {"format": FORMAT_NAME, "version": FORMAT_VERSION,
                 "root": _encode(obj, "obj", arrays, set())}
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"save: the folder of {path!r} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            _write_archive(f, structure, arrays)
            f.flush()
            os.fsync(f.fileno())  # the bytes are on disk before the rename makes them visible
        with contextlib.suppress(OSError):  # mkstemp's 0o600 would hide the file from others
            os.chmod(tmp, os.stat(path).st_mode & 0o777 if os.path.exists(path) else 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_folder(folder)


def _fsync_folder(folder: str) -> None:
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ------------------------------------------------------------------ decoding
def _target_device(saved: str, map_location) -> backend.Device:
    if map_location is not None:
        return map_location
    if saved.startswith("cuda") and backend.cuda_unavailable_reason() is None:
        index = int(saved.split(":")[1]) if ":" in saved else 0
        if index < backend.cuda_device_count():
            return backend.Device(saved)
    return backend.Device("cpu")


def _decode(node: Any, members: dict[str, np.ndarray], map_location) -> Any:
    if not isinstance(node, dict):
        return node  # a plain JSON value
    kind = node["kind"]
    if kind == "dict":
        return {key: _decode(value, members, map_location) for key, value in node["items"]}
    if kind == "list":
        return [_decode(v, members, map_location) for v in node["items"]]
    if kind == "tuple":
        return tuple(_decode(v, members, map_location) for v in node["items"])
    if kind == "numpy_scalar":
        return members[node["array"]][()]
    if kind == "ndarray":  # NumPy arrays stay NumPy arrays; CuPy ones move like tensors
        if node["device"] == "cpu":
            return members[node["array"]]
        return backend.to_device(members[node["array"]],
                                 _target_device(node["device"], map_location))
    if kind == "tensor":
        data = backend.to_device(members[node["array"]],
                                 _target_device(node["device"], map_location))
        return Tensor(data, requires_grad=bool(node["requires_grad"]))
    raise ValueError(f"unknown node kind {kind!r}")


def load(path: str | os.PathLike, map_location: Any = None) -> Any:
    """Load what :func:`save` wrote. Tensors come back as Tensors on ``map_location``
    (``"cpu"``, ``"cuda"``, ``"cuda:N"``; default: the device they were saved from when
    it is available, else the CPU), NumPy arrays as NumPy arrays (CuPy arrays as CuPy
    arrays by the tensors' rule, else as NumPy arrays), dicts with int keys with int keys.

    Raises FileNotFoundError when ``path`` does not exist and ValueError, naming the
    file, when it is truncated, corrupt or not a tensorgrad checkpoint.
    """
    path = os.fspath(path)
    device = None if map_location is None else backend.parse_device(map_location)
    if not os.path.exists(path):
        raise FileNotFoundError(f"load: no such file: {path!r}")
    try:
        npz = np.load(path, allow_pickle=False)
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise ValueError("it is a single .npy array, not an .npz archive")
        with npz:
            if STRUCTURE_MEMBER not in npz.files:
                raise ValueError(f"it has no {STRUCTURE_MEMBER} member")
            structure = json.loads(npz[STRUCTURE_MEMBER])
            if not isinstance(structure, dict) or structure.get("format") != FORMAT_NAME:
                raise ValueError(f"{STRUCTURE_MEMBER} does not describe a {FORMAT_NAME} file")
            if structure.get("version") != FORMAT_VERSION:
                raise ValueError(f"format version {structure.get('version')!r} is not "
                                 f"supported (this is version {FORMAT_VERSION})")
            # Read (and CRC-check) every member before building anything.
            members = {name: npz[name] for name in npz.files if name != STRUCTURE_MEMBER}
            return _decode(structure["root"], members, device)
    except (ValueError, KeyError, TypeError, EOFError, OSError, zipfile.BadZipFile,
            UnicodeDecodeError, RecursionError) as e:  # (a crafted, absurdly deep nesting)
        if isinstance(e, FileNotFoundError):
            raise
        raise ValueError(
            f"load: {path!r} is truncated, corrupt or not a tensorgrad checkpoint "
            f"({type(e).__name__}: {e})"
        ) from e
