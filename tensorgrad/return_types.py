"""The named tuples that ops with two results return, as ``torch.return_types``.

``values, indices = x.max(dim=1)`` unpacks like any tuple; ``x.max(1).indices`` reads
one field by name. ``values`` carries the gradient, ``indices`` (int64) does not.
"""

from __future__ import annotations

from collections import namedtuple

__all__ = ["max", "min", "sort", "topk"]


def _pair(name: str):
    return namedtuple(name, ["values", "indices"], module=__name__)


max = _pair("max")  # noqa: A001 - the op's name, as torch.return_types.max
min = _pair("min")  # noqa: A001
sort = _pair("sort")
topk = _pair("topk")
