"""``cupy.cuda.runtime``: one stand-in device."""

from .._core import CUDARuntimeError, _current_device, _used
from .._core import Device as _Device

__all__ = ["CUDARuntimeError", "deviceSynchronize", "driverGetVersion", "getDevice",
           "getDeviceCount", "getDeviceProperties", "is_hip", "memGetInfo",
           "runtimeGetVersion", "setDevice"]

is_hip = False
_TOTAL = 80 << 30


def getDeviceCount() -> int:  # noqa: N802 - CUDA's names
    return 1


def getDevice() -> int:  # noqa: N802
    return _current_device()


def setDevice(device: int) -> None:  # noqa: N802
    _Device(device).use()


def deviceSynchronize() -> None:  # noqa: N802
    pass


def getDeviceProperties(device: int) -> dict:  # noqa: N802
    _Device(device)._check()
    return {"name": b"tensorgrad CuPy stand-in (NumPy)", "totalGlobalMem": _TOTAL,
            "major": 9, "minor": 0, "multiProcessorCount": 1, "warpSize": 32}


def memGetInfo() -> tuple[int, int]:  # noqa: N802
    return _TOTAL - _used[0], _TOTAL


def runtimeGetVersion() -> int:  # noqa: N802
    return 12080


def driverGetVersion() -> int:  # noqa: N802
    return 12080
