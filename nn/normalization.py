"""Normalization layers: subtract a mean, divide by a standard deviation, then an
optional learned affine map y = γ·x̂ + β. They differ in which axes the statistics
are taken over (for x of shape N×C×H×W):

- BatchNorm: per channel, over N, H, W; at test time it uses running averages
  r ← (1 − momentum)·r + momentum·batch_stat (running_var with the unbiased variance),
  so in eval mode it is a fixed affine map that can be fused into the previous conv.
- LayerNorm: per sample, over the trailing ``normalized_shape`` dims.
- GroupNorm: per sample, over groups of C/G channels and H, W.
- InstanceNorm: per sample and per channel, over H, W.
- LocalResponseNorm (AlexNet): each value divided by (k + α/n · Σ of squares over n
  neighbouring channels)^β.
"""

from __future__ import annotations

import numbers

import numpy as np

import tensorgrad.functional as F
from tensorgrad import backend
from tensorgrad.tensor import Tensor

from . import init
from .linear import new_parameter
from .module import Module


class _AffineNorm(Module):
    """What every normalization with a learned affine map has: γ (``weight``, starts
    at 1) and β (``bias``, starts at 0) of one shape. Switched off, they are still
    attributes, set to None, as in PyTorch."""

    def _init_affine(self, shape: tuple[int, ...], affine: bool, bias: bool, device,
                     dtype) -> None:
        self.register_parameter("weight", new_parameter(shape, device, dtype) if affine else None)
        self.register_parameter("bias",
                                new_parameter(shape, device, dtype) if affine and bias else None)

    def reset_parameters(self) -> None:
        # y = 1·x̂ + 0: the layer starts as a pure normalization
        if self.weight is not None:
            init.ones_(self.weight)
        if self.bias is not None:
            init.zeros_(self.bias)


class _NormBase(_AffineNorm):
    """Shared state of BatchNorm and InstanceNorm: γ, β and the running statistics."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, device=None, dtype=None,
                 *, bias: bool = True):
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        self._init_affine((num_features,), affine, bias, device, dtype)
        if track_running_stats:
            xp = backend.module_for(backend.parse_device(device))
            dt = np.dtype(dtype or np.float32)
            self.register_buffer("running_mean", Tensor(xp.zeros(num_features, dtype=dt)))
            self.register_buffer("running_var", Tensor(xp.ones(num_features, dtype=dt)))
            self.register_buffer("num_batches_tracked", Tensor(xp.zeros((), dtype=np.int64)))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean.data[...] = 0
            self.running_var.data[...] = 1
            self.num_batches_tracked.data[...] = 0
            for t in (self.running_mean, self.running_var, self.num_batches_tracked):
                t._bump_version()

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        super().reset_parameters()

    def _check_input(self, x: Tensor) -> None:
        raise NotImplementedError

    def _momentum(self) -> float:
        """This step's running-average factor (the batch about to be counted included)."""
        if self.momentum is None:  # cumulative moving average
            return 1.0 / (int(self.num_batches_tracked.item()) + 1)
        return self.momentum

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, bias={self.bias is not None}, "
                f"track_running_stats={self.track_running_stats}")


class _BatchNorm(_NormBase):
    _expected_dims: tuple[int, ...] = ()

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        # eval mode without running statistics normalises with the batch's own
        use_batch_stats = self.training or self.running_mean is None
        track = not self.training or self.track_running_stats
        counting = self.training and self.track_running_stats
        y = F.batch_norm(x, self.running_mean if track else None,
                         self.running_var if track else None, self.weight, self.bias,
                         use_batch_stats, self._momentum() if counting else 0.0, self.eps)
        if counting:  # only once the batch was accepted: a rejected input changes nothing
            self.num_batches_tracked.data += 1
        return y

    def _check_input(self, x: Tensor) -> None:
        if x.ndim not in self._expected_dims:
            dims = " or ".join(f"{d}D" for d in self._expected_dims)
            raise ValueError(f"{type(self).__name__}: expected {dims} input, got "
                             f"{x.ndim}D input of shape {x.shape}")
        if x.shape[1] != self.num_features:
            raise ValueError(f"{type(self).__name__}: expected {self.num_features} channels "
                             f"(dim 1), got input of shape {x.shape}")


class BatchNorm1d(_BatchNorm):
    """Batch normalization of (N, C) or (N, C, L) input."""

    _expected_dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalization of (N, C, H, W) input, per channel over N, H, W."""

    _expected_dims = (4,)


class InstanceNorm2d(_NormBase):
    """Per-sample, per-channel normalization over H, W of (N, C, H, W) or (C, H, W)
    input. As PyTorch: no affine map and no running statistics by default."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = False, track_running_stats: bool = False, device=None,
                 dtype=None, *, bias: bool = True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype,
                         bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim not in (3, 4):
            raise ValueError(f"InstanceNorm2d: expected 3D or 4D input, got {x.ndim}D input "
                             f"of shape {x.shape}")
        unbatched = x.ndim == 3
        if unbatched:
            x = x.unsqueeze(0)
        if self.affine and x.shape[1] != self.num_features:
            raise ValueError(f"InstanceNorm2d: expected {self.num_features} channels (dim 1), "
                             f"got input of shape {x.shape}")
        # as PyTorch: momentum=None means 0 here and num_batches_tracked is never counted
        y = F.instance_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            use_input_stats=self.training or not self.track_running_stats,
                            momentum=0.0 if self.momentum is None else self.momentum,
                            eps=self.eps)
        return y.squeeze(0) if unbatched else y


class LayerNorm(_AffineNorm):
    """Normalise over the last ``len(normalized_shape)`` dims of each sample; γ and β
    have shape ``normalized_shape``."""

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True, device=None, dtype=None):
        super().__init__()
        if isinstance(normalized_shape, numbers.Integral):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(int(s) for s in normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        self._init_affine(self.normalized_shape, elementwise_affine, bias, device, dtype)
        self.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}")


class GroupNorm(_AffineNorm):
    """Normalise each sample over groups of ``num_channels / num_groups`` channels;
    γ and β are per channel."""

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5,
                 affine: bool = True, device=None, dtype=None, *, bias: bool = True):
        super().__init__()
        if num_groups <= 0 or num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_channels ({num_channels}) must be divisible by "
                             f"num_groups ({num_groups})")
        self.num_groups = num_groups
        self.num_channels = num_channels
        self.eps = eps
        self.affine = affine
        self._init_affine((num_channels,), affine, bias, device, dtype)
        self.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
                f"bias={self.bias is not None}")


class LocalResponseNorm(Module):
    """AlexNet's normalization across ``size`` neighbouring channels."""

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0):
        super().__init__()
        self.size = size
        self.alpha = alpha
        self.beta = beta
        self.k = k

    def forward(self, x: Tensor) -> Tensor:
        return F.local_response_norm(x, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self) -> str:
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"
