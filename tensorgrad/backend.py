"""The array backends: NumPy on the CPU, CuPy on NVIDIA GPUs.

Every op works on raw arrays through ``xp = get_array_module(array)``, so one code
path serves both libraries. This file is the only place that knows CuPy exists:
devices are parsed, arrays are moved and random generators are kept here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

try:  # CuPy is an optional extra; importing it must never be required.
    import cupy as _cupy
except Exception:  # pragma: no cover - depends on the machine
    _cupy = None

_cuda_error: str | None = None  # why CUDA is unusable, once we know


class Device(str):
    """A device name: ``"cpu"`` or ``"cuda:N"``. A ``str``, so ``t.device == "cpu"``
    works, with PyTorch's ``.type`` and ``.index`` for code that expects them."""

    @property
    def type(self) -> str:
        return self.split(":")[0]

    @property
    def index(self) -> int | None:
        return int(self.split(":")[1]) if ":" in self else None


def cuda_unavailable_reason() -> str | None:
    """None when a CUDA device is usable, else a sentence saying why not. Never raises."""
    global _cuda_error
    if _cuda_error is not None:
        return _cuda_error or None
    if _cupy is None:
        _cuda_error = "CuPy is not installed (pip install 'tensorgrad[cuda12]')"
    else:
        try:
            n = _cupy.cuda.runtime.getDeviceCount()
            _cuda_error = "" if n > 0 else "CuPy found no CUDA device"
        except Exception as e:  # no driver, no device, broken install ...
            _cuda_error = f"CuPy cannot reach a CUDA device ({type(e).__name__}: {e})"
    return _cuda_error or None


def cuda_device_count() -> int:
    if cuda_unavailable_reason() is not None:
        return 0
    return int(_cupy.cuda.runtime.getDeviceCount())


def parse_device(device: Any) -> Device:
    """Normalise ``None``/``"cpu"``/``"cuda"``/``"cuda:N"`` (or a Device) to a Device.

    Raises ValueError for an unknown name and RuntimeError when CUDA is asked for
    but cannot be used, saying why.
    """
    if device is None:
        return Device("cpu")
    name = str(device).strip().lower()
    if name == "cpu":
        return Device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        reason = cuda_unavailable_reason()
        if reason is not None:
            raise RuntimeError(f"device {device!r} requested but CUDA is not available: {reason}")
        index = 0 if name == "cuda" else name.split(":", 1)[1]
        if not str(index).isdigit() or int(index) >= cuda_device_count():
            raise RuntimeError(
                f"device {device!r}: no such CUDA device ({cuda_device_count()} available)"
            )
        cuda_device = Device(f"cuda:{int(index)}")
        if cuda_device not in _cuda_devices_used:  # first use: count its peak memory
            _cuda_devices_used.add(cuda_device)
            from .cuda import start_memory_tracking

            start_memory_tracking(cuda_device)
        return cuda_device
    raise ValueError(f"unknown device {device!r}: expected 'cpu', 'cuda' or 'cuda:N'")


_cuda_devices_used: set[str] = set()


def device(type: Any, index: int | None = None) -> Device:  # noqa: A002 - torch's name
    """``tg.device("cuda:1")``, ``tg.device("cuda", 1)``, ``tg.device(0)``: a device name,
    as ``torch.device``. It only names the device (no GPU is needed to make one); using
    it for a tensor checks that it exists. ``"cuda"`` without an index stays ``"cuda"``,
    which tensors resolve to the first GPU."""
    if isinstance(type, (int, np.integer)) and not isinstance(type, bool):
        type, index = "cuda", int(type)
    if not isinstance(type, str):
        raise TypeError(f"device: expected a device name (str) or an index, got {type!r}")
    name = type.strip().lower()
    kind, _, given = name.partition(":")
    if given:
        if index is not None:
            raise ValueError(f"device: the index is given twice ({type!r} and {index})")
        if not given.isdigit():
            raise ValueError(f"device: invalid device string {type!r}")
        index = int(given)
    if kind not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {type!r}: expected 'cpu', 'cuda' or 'cuda:N'")
    if index is not None and (not isinstance(index, (int, np.integer)) or index < 0):
        raise ValueError(f"device: the index must be a non-negative int, got {index!r}")
    if kind == "cpu":
        return Device("cpu")  # one host device: "cpu:0" is "cpu"
    return Device("cuda" if index is None else f"cuda:{int(index)}")


def is_cupy_array(a: Any) -> bool:
    return _cupy is not None and isinstance(a, _cupy.ndarray)


# (TracedArray, its module): set by tensorgrad.autograd.traced, which records backward
# formulas as tensor ops when a graph of the backward pass is wanted (create_graph)
traced_module: tuple = (None, None)


def get_array_module(a: Any):
    """The ``xp`` idiom: the module (numpy or cupy) that owns array ``a``."""
    if is_cupy_array(a):
        return _cupy
    return traced_module[1] if type(a) is traced_module[0] else np


def module_for(device: Device):
    return _cupy if device.type == "cuda" else np


def device_of(a: Any) -> Device:
    if is_cupy_array(a):
        return Device(f"cuda:{a.device.id}")
    return Device("cpu")


def to_device(a: Any, device: Device):
    """Move (or keep) array ``a`` on ``device``; no copy when it is already there."""
    if device_of(a) == device:
        return a
    if device.type == "cpu":
        return _cupy.asnumpy(a)
    with _cupy.cuda.Device(device.index):
        return _cupy.asarray(a)


def to_numpy(a: Any) -> np.ndarray:
    """A host copy of ``a`` (the array itself on the CPU): a transfer the user asked
    for, so the checks kept on the GPU are read first (see ``check_later``)."""
    if not is_cupy_array(a):
        return np.asarray(a)
    raise_deferred()
    return _cupy.asnumpy(a)


# ------------------------------------------------------------ checks kept on a GPU
# A check of values on a GPU (a class target out of range) would cost a device->host
# transfer, which waits for the GPU, in the middle of every training step. Such checks
# are kept here as 0-d device flags and read together at the next transfer the user
# asks for (.item(), .numpy(), printing), as PyTorch's device-side asserts surface at
# its next synchronisation: the error still comes before any value is seen.
_deferred: list[tuple[Any, Any]] = []  # (0-d bool device array: failed?, error factory)
_MAX_DEFERRED = 64  # read them at the latest every 64 checks (one transfer for all)


def check_later(failed: Any, error: Any) -> None:
    """Keep the check ``failed`` (a 0-d bool CuPy array) until the next transfer;
    ``error()`` builds the exception to raise if it failed (it may read device values:
    it only runs then)."""
    _deferred.append((failed, error))
    if len(_deferred) >= _MAX_DEFERRED:
        raise_deferred()


def raise_deferred() -> None:
    """Read every kept check in one transfer; raise the first failed one's error."""
    if not _deferred:
        return
    pending = _deferred[:]
    _deferred.clear()
    flags = _cupy.asnumpy(_cupy.stack([f for f, _ in pending]))
    for (_, error), failed in zip(pending, flags):
        if failed:
            raise error()


# ---------------------------------------------------------------- random numbers
# One generator per device, all reseeded by tg.manual_seed.
_generators: dict[str, Any] = {}
_seed: int | None = None


def generator(device: Device):
    """The random generator of ``device`` (a NumPy or CuPy ``Generator``)."""
    key = str(device)
    if key not in _generators:
        xp = module_for(device)
        if xp is np:
            _generators[key] = np.random.default_rng(_seed)
        else:
            with _cupy.cuda.Device(device.index):
                _generators[key] = _cupy.random.default_rng(_seed)
    return _generators[key]


def manual_seed(seed: int) -> None:
    """Reseed every device's generator (as ``torch.manual_seed``)."""
    global _seed
    if not isinstance(seed, (int, np.integer)):
        raise TypeError(f"manual_seed expects an int, got {type(seed).__name__}")
    _seed = int(seed)
    _generators.clear()


def get_rng_state() -> dict:
    """The CPU generator's state, as JSON-serialisable data (for checkpoints)."""
    return generator(Device("cpu")).bit_generator.state


def set_rng_state(state: dict) -> None:
    g = np.random.default_rng()
    g.bit_generator.state = state
    _generators["cpu"] = g
