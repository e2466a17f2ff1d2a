"""``tg.testing``: hypothesis strategies and helpers for property-based gradient tests.

Use them to test your own ops the way tensorgrad tests its own (see the README).
"""

from .geometry import (  # noqa: F401 - conv/pool parameter sets
    Conv2dParams,
    Pool2dParams,
    conv2d_params,
    pool2d_params,
)
from .strategies import (  # noqa: F401 - the public names of tg.testing
    arrays,
    assert_gradcheck,
    assert_gradgradcheck,
    broadcastable_shapes,
    check_gradients,
    check_second_gradients,
    shapes,
    strided_arrays,
    tensors,
)
