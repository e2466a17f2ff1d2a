"""What the stand-in adds for the tests (not CuPy API): it counts host<->device transfers.

    from cupy import _standin
    with _standin.transfers() as moved:
        step()
    assert moved.host_to_device == 1, moved.log

``count`` is called by every transfer: ``cupy.asarray``/``cupy.array`` of host data,
host index arrays, ``set``; ``cupy.asnumpy``, ``get``, ``item``, ``tolist``, ``float()``,
``int()``, ``bool()``, ``repr``/``str``/``format`` and pickling.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass
class Transfers:
    host_to_device: int = 0
    device_to_host: int = 0
    log: list[tuple[str, int, str]] = field(default_factory=list)  # (direction, bytes, what)


_open: list[Transfers] = []


def count(direction: str, nbytes: int, what: str) -> None:
    for t in _open:
        setattr(t, direction, getattr(t, direction) + 1)
        t.log.append((direction, int(nbytes), what))


@contextlib.contextmanager
def transfers() -> Iterator[Transfers]:
    """Count the transfers made inside the ``with`` block."""
    t = Transfers()
    _open.append(t)
    try:
        yield t
    finally:
        _open.remove(t)
