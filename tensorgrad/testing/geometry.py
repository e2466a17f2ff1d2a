"""Hypothesis strategies for convolution and pooling geometries that are valid.

Drawing sizes independently mostly gives kernels larger than the input or empty
outputs; these strategies draw the kernel, stride, padding and dilation first and
then an input large enough for at least one output position, so every example is
usable::

    from hypothesis import given
    from tensorgrad.testing import conv2d_params

    @given(conv2d_params())
    def test_my_conv(p):
        x = tg.randn(*p.input_shape, dtype=tg.float64, requires_grad=True)
        w = tg.randn(*p.weight_shape, dtype=tg.float64, requires_grad=True)
        y = F.conv2d(x, w, **p.kwargs)
        assert y.shape == p.output_shape

Defaults are small on purpose: ``tg.gradcheck`` costs two forward passes per input
element.
"""

from __future__ import annotations

from typing import NamedTuple

from hypothesis import strategies as st

Pair = tuple[int, int]


class Conv2dParams(NamedTuple):
    """One valid ``conv2d`` geometry; pairs are (height, width)."""

    batch: int
    in_channels: int
    height: int
    width: int
    out_channels: int
    kernel_size: Pair
    stride: Pair
    padding: Pair
    dilation: Pair
    groups: int

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return (self.batch, self.in_channels, self.height, self.width)

    @property
    def weight_shape(self) -> tuple[int, int, int, int]:
        return (self.out_channels, self.in_channels // self.groups) + self.kernel_size

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        out = tuple((n + 2 * p - d * (k - 1) - 1) // s + 1 for n, k, s, p, d in zip(
            (self.height, self.width), self.kernel_size, self.stride, self.padding,
            self.dilation))
        return (self.batch, self.out_channels) + out

    @property
    def kwargs(self) -> dict:
        """The keyword arguments of ``conv2d`` (all but input, weight and bias)."""
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation,
                    groups=self.groups)


class Pool2dParams(NamedTuple):
    """One valid ``max_pool2d`` / ``avg_pool2d`` geometry; pairs are (height, width)."""

    batch: int
    channels: int
    height: int
    width: int
    kernel_size: Pair
    stride: Pair
    padding: Pair
    ceil_mode: bool
    count_include_pad: bool

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return (self.batch, self.channels, self.height, self.width)

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        return (self.batch, self.channels) + tuple(
            _pool_out(n, k, s, p, self.ceil_mode) for n, k, s, p in zip(
                (self.height, self.width), self.kernel_size, self.stride, self.padding))

    @property
    def max_pool_kwargs(self) -> dict:
        return dict(kernel_size=self.kernel_size, stride=self.stride, padding=self.padding,
                    ceil_mode=self.ceil_mode)

    @property
    def avg_pool_kwargs(self) -> dict:
        return dict(self.max_pool_kwargs, count_include_pad=self.count_include_pad)


def _pool_out(size: int, k: int, s: int, p: int, ceil_mode: bool) -> int:
    out = (size + 2 * p - k + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= size + p:  # the last window must start in range
        out -= 1
    return out


@st.composite
def conv2d_params(draw, max_batch: int = 2, max_channels: int = 4, max_size: int = 6,
                  max_kernel: int = 3, max_stride: int = 2, max_padding: int = 1,
                  max_dilation: int = 2, max_groups: int = 2) -> Conv2dParams:
    """Geometries for ``conv2d`` with at least one output position. Channels are
    multiples of the drawn group count; height and width may exceed ``max_size``
    only when a dilated kernel needs it."""
    groups = draw(st.integers(1, max_groups))
    per_group = max(1, max_channels // groups)
    in_channels = groups * draw(st.integers(1, per_group))
    out_channels = groups * draw(st.integers(1, per_group))
    kernel, stride, padding, dilation, size = [], [], [], [], []
    for _ in range(2):  # height, then width: drawn separately to exercise asymmetry
        k = draw(st.integers(1, max_kernel))
        d = draw(st.integers(1, max_dilation)) if k > 1 else 1
        p = draw(st.integers(0, max_padding))
        smallest = max(1, d * (k - 1) + 1 - 2 * p)  # the padded input must hold the kernel
        kernel.append(k)
        dilation.append(d)
        padding.append(p)
        stride.append(draw(st.integers(1, max_stride)))
        size.append(draw(st.integers(smallest, max(smallest, max_size))))
    return Conv2dParams(draw(st.integers(1, max_batch)), in_channels, size[0], size[1],
                        out_channels, tuple(kernel), tuple(stride), tuple(padding),
                        tuple(dilation), groups)


@st.composite
def pool2d_params(draw, max_batch: int = 2, max_channels: int = 3, max_size: int = 7,
                  max_kernel: int = 3, max_stride: int = 3) -> Pool2dParams:
    """Geometries for ``max_pool2d`` / ``avg_pool2d`` with PyTorch's constraints:
    padding at most half the kernel, and at least one window along each axis."""
    ceil_mode = draw(st.booleans())
    kernel, stride, padding, size = [], [], [], []
    for _ in range(2):
        k = draw(st.integers(1, max_kernel))
        p = draw(st.integers(0, k // 2))
        kernel.append(k)
        padding.append(p)
        stride.append(draw(st.integers(1, max_stride)))
        smallest = max(1, k - 2 * p)
        size.append(draw(st.integers(smallest, max(smallest, max_size))))
    return Pool2dParams(draw(st.integers(1, max_batch)), draw(st.integers(1, max_channels)),
                        size[0], size[1], tuple(kernel), tuple(stride), tuple(padding),
                        ceil_mode, draw(st.booleans()))
