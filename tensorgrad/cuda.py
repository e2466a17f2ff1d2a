"""``tg.cuda``: is a GPU usable, and how much of its memory do tensors hold?

``is_available`` never raises; asking for "cuda" when it is not raises from
``backend.parse_device`` with the reason. The memory functions read CuPy's default
memory pool, which every CUDA tensor's array comes from. Without a usable GPU they
return 0 (and ``reset_peak_memory_stats`` does nothing), as PyTorch's do before CUDA
is initialised; ``synchronize`` raises, as PyTorch's does.

CuPy's pool keeps no peak, so a ``cupy.cuda.MemoryHook`` counts it: it sees every
allocation from and release to the pool made by the thread that first used CUDA (CuPy's
hooks are per thread; arrays made in other threads still count in
``memory_allocated``, and in the peak from the next query on).
"""

from __future__ import annotations

from typing import Any

from . import backend


def is_available() -> bool:
    return backend.cuda_unavailable_reason() is None


def device_count() -> int:
    return backend.cuda_device_count()


def unavailable_reason() -> str | None:
    """Why CUDA cannot be used (None when it can)."""
    return backend.cuda_unavailable_reason()


def _index(device: Any) -> int:
    """The CUDA device number of ``device`` (None: the current one; an int; "cuda:N")."""
    if device is None:
        return int(backend._cupy.cuda.runtime.getDevice())
    if isinstance(device, int) and not isinstance(device, bool):
        name = f"cuda:{device}"
    else:
        name = str(device)
    parsed = backend.parse_device(name)
    if parsed.type != "cuda":
        raise ValueError(f"expected a CUDA device, got {device!r}")
    return parsed.index


def synchronize(device: Any = None) -> None:
    """Wait until every kernel queued on ``device`` (default: the current one) is done:
    GPU calls return before the work ends, so time only after this."""
    reason = backend.cuda_unavailable_reason()
    if reason is not None:
        raise RuntimeError(f"tg.cuda.synchronize: CUDA is not available: {reason}")
    backend._cupy.cuda.Device(_index(device)).synchronize()
    backend.raise_deferred()  # the checks kept on the GPU (backend.check_later)


class _PeakCounter:
    """Bytes in use per device, counted from the pool's malloc/free events, and their
    maximum. Kept apart from CuPy's hook class so its arithmetic is testable anywhere."""

    name = "tensorgrad_peak_memory"  # CuPy keys a thread's hooks by name

    def __init__(self) -> None:
        self.current: dict[int, int] = {}
        self.peak: dict[int, int] = {}

    def start(self, device_id: int, in_use: int) -> None:
        self.current[device_id] = in_use
        self.peak[device_id] = max(self.peak.get(device_id, 0), in_use)

    def malloc_postprocess(self, **kw) -> None:
        d = kw["device_id"]
        now = self.current.get(d, 0) + kw["mem_size"]
        self.current[d] = now
        if now > self.peak.get(d, 0):
            self.peak[d] = now

    def free_postprocess(self, **kw) -> None:
        d = kw["device_id"]
        self.current[d] = self.current.get(d, 0) - kw["mem_size"]


_counter: _PeakCounter | None = None


def _pool_in_use(index: int) -> int:
    with backend._cupy.cuda.Device(index):
        return int(backend._cupy.get_default_memory_pool().used_bytes())


def _track(index: int) -> _PeakCounter:
    """Start counting (once per process): install the hook in this thread."""
    global _counter
    if _counter is None:
        hook_type = type("_PeakHook", (_PeakCounter, backend._cupy.cuda.MemoryHook), {})
        hook = hook_type()
        hook.__enter__()  # stays installed for the life of the process
        _counter = hook
    if index not in _counter.current:
        _counter.start(index, _pool_in_use(index))
    return _counter


def memory_allocated(device: Any = None) -> int:
    """Bytes of GPU memory held by arrays now (rounded up to the pool's block size)."""
    if not is_available():
        return 0
    index = _index(device)
    counter = _track(index)
    now = counter.current[index] = _pool_in_use(index)  # the pool is the truth: resync
    return now


def max_memory_allocated(device: Any = None) -> int:
    """The most bytes ``memory_allocated`` reached since the program started counting
    (the first CUDA tensor) or since ``reset_peak_memory_stats``."""
    if not is_available():
        return 0
    index = _index(device)
    counter = _track(index)
    now = counter.current[index] = _pool_in_use(index)
    return max(counter.peak.get(index, 0), now)


def reset_peak_memory_stats(device: Any = None) -> None:
    """Start the peak over from the bytes in use now."""
    if not is_available():
        return
    index = _index(device)
    counter = _track(index)
    now = _pool_in_use(index)
    counter.current[index] = now
    counter.peak[index] = now


def start_memory_tracking(device: backend.Device) -> None:
    """Called when a CUDA device is first used, so that the peak covers the whole run.
    Quietly nothing when the CuPy in use has no memory hooks (the test suite's stand-in)."""
    if _counter is None or device.index not in _counter.current:
        try:
            _track(device.index)
        except AttributeError:
            pass
