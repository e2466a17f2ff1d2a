"""``cupy.lib.stride_tricks``: views with other shapes and strides of a device array."""

from __future__ import annotations

import numpy as _np

from .._core import function as _function

as_strided = _function(_np.lib.stride_tricks.as_strided, "as_strided")
sliding_window_view = _function(_np.lib.stride_tricks.sliding_window_view,
                                "sliding_window_view")
