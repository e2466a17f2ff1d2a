"""``cupy.cuda``: one device, id 0, its memory pool and hooks; streams and events that
wait for nothing (the stand-in computes synchronously)."""

from __future__ import annotations

import time as _time

from .._core import Device, MemoryHook, MemoryPointer, MemoryPool
from . import runtime

__all__ = ["Device", "Event", "MemoryHook", "MemoryPointer", "MemoryPool", "Stream",
           "get_current_stream", "get_device_id", "get_elapsed_time", "is_available",
           "runtime"]


def is_available() -> bool:
    return True


def get_device_id() -> int:
    return runtime.getDevice()


class Stream:
    def __init__(self, null=False, non_blocking=False, priority=0):
        self.null = null

    def synchronize(self) -> None:
        pass

    def use(self):
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    @property
    def done(self) -> bool:
        return True


class Event:
    def __init__(self, block=False, disable_timing=False, interprocess=False):
        self._t = None

    def record(self, stream=None) -> None:
        self._t = _time.perf_counter()

    def synchronize(self) -> None:
        pass

    @property
    def done(self) -> bool:
        return True


def get_elapsed_time(start_event: Event, end_event: Event) -> float:
    """Milliseconds between two recorded events."""
    return (end_event._t - start_event._t) * 1000.0


_null = Stream(null=True)


def get_current_stream(device_id=-1) -> Stream:
    return _null
