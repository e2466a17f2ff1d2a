"""Host memory: keep freed array buffers in the process for the next step to reuse.

Training allocates and frees the same few activation-sized arrays at every step. With
its default settings glibc's ``malloc`` hands such blocks back to the kernel when they
are freed (large blocks are ``mmap``-ed; a large free top of the heap is trimmed), so
the next step's array of the same size lands on fresh pages, and the first touch of
every 4 KiB page is a page fault that the kernel answers with a zeroed page. On a
batch-norm forward + backward over a 8 MiB activation that was half the time (about
1,000 faults per backward: 11.6 ms a step, 6.4 ms with the buffers kept).

So, once at import, on glibc only, tensorgrad raises two ``mallopt`` thresholds:
blocks up to 32 MiB (the largest mmap threshold glibc accepts) come from the heap,
and up to 512 MiB of free heap top stays mapped instead of being trimmed. It is the
CPU analogue of the caching allocators GPU frameworks (CuPy's memory pool,
PyTorch's CUDA allocator) use for the same reason; the cost is that memory freed by a
peak is kept by the process, for reuse, rather than returned at once.

It is process-wide, so it steps aside when asked: set ``TG_KEEP_HOST_MEMORY=0``, or
set glibc's own ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_``, and malloc is
left as it is.
"""

from __future__ import annotations

import ctypes
import os

# mallopt parameter numbers, from glibc's <malloc.h>
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD = 32 << 20
TRIM_THRESHOLD = 512 << 20

_OWN_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")


def _glibc() -> bool:
    try:
        return os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc")
    except (AttributeError, ValueError, OSError):  # not a glibc system
        return False


def keep_host_memory(mmap_threshold: int = MMAP_THRESHOLD,
                     trim_threshold: int = TRIM_THRESHOLD) -> bool:
    """Set glibc's malloc to keep freed blocks (see the module docstring).

    Returns True when the settings were applied; False on other C libraries, when
    ``TG_KEEP_HOST_MEMORY=0``, or when the user tuned malloc through its own
    environment variables."""
    if os.environ.get("TG_KEEP_HOST_MEMORY", "1") == "0":
        return False
    if any(name in os.environ for name in _OWN_SETTINGS) or not _glibc():
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    # mallopt returns 1 on success; setting either threshold also turns off glibc's
    # dynamic adjustment of both
    return bool(mallopt(_M_MMAP_THRESHOLD, mmap_threshold)
                and mallopt(_M_TRIM_THRESHOLD, trim_threshold))


applied = keep_host_memory()
