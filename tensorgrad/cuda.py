"""``tg.cuda``: is a GPU usable? Never raises; asking for "cuda" when it is not
raises from ``backend.parse_device`` with the reason."""

from __future__ import annotations

from . import backend


def is_available() -> bool:
    return backend.cuda_unavailable_reason() is None


def device_count() -> int:
    return backend.cuda_device_count()


def unavailable_reason() -> str | None:
    """Why CUDA cannot be used (None when it can)."""
    return backend.cuda_unavailable_reason()
