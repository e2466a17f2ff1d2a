r"""SyncBatchNorm: batch normalization whose statistics are those of the global batch.

With data parallelism each rank sees only its shard of the batch. A plain BatchNorm
would normalise with the shard's mean and variance — a different, noisier function
than one process taking the whole batch. SyncBatchNorm makes the N shards behave as
one batch, with two reductions per layer and step.

Forward: each rank computes, per channel, its count n_r, mean μ_r and sum of squared
deviations M_r (two passes, as BatchNorm), and one all-gather gives every rank all of
them. They combine as in a parallel variance computation (Chan et al.)::

    n = Σ n_r,   μ = Σ n_r μ_r / n,   σ² = Σ (M_r + n_r (μ_r - μ)²) / n

which, unlike Σx and Σx² (σ² = Σx²/n - μ², a difference of two large numbers), loses
no precision when |μ| ≫ σ. The running statistics take μ and the unbiased σ²·n/(n-1)
with the global n: exactly what one BatchNorm over the global batch keeps.

Backward: dx of BatchNorm (see ``tensorgrad/ops/norm.py``) needs two means over the
batch, of g and of g·x̂; here over the *global* batch, so the per-rank sums Σg and
Σg·x̂ are added up with one all-reduce::

    dx = s·γ·(g - Σg/n - x̂·Σ(g·x̂)/n),   s = 1/√(σ² + eps)

dγ = Σg·x̂ and dβ = Σg stay per-rank sums: DistributedDataParallel averages them
with the other gradients, and (1/N)·Σ_r of the rank sums is the global-batch value,
since each rank's loss is a mean over 1/N of the batch.
"""

from __future__ import annotations

from typing import Any

import tensorgrad.distributed as dist
from tensorgrad.autograd import Function
from tensorgrad.backend import get_array_module
from tensorgrad.ops.norm import _running_arrays, _sum_product, _update_running
from tensorgrad.tensor import Tensor

from ..module import Module
from ..normalization import _BatchNorm


class SyncBatchNormFunction(Function):
    """y = γ·(x - μ)/√(σ² + eps) + β with μ, σ² over every rank's x (N, C, ...)."""

    @staticmethod
    def forward(ctx, x, weight, bias, *, eps, running, group):
        xp = get_array_module(x)
        c = x.shape[1]
        xv = x.reshape(x.shape[0], c, -1)
        n_local = xv.shape[0] * xv.shape[2]
        local = xp.zeros((1 + 2 * c,), dtype=x.dtype)  # n_r, μ_r (C), M_r (C)
        local[0] = n_local
        if n_local:
            mean_r = _sum_product(xv, None, (0, 2)) / n_local
            centred = xv - mean_r
            local[1:1 + c] = mean_r.reshape(c)
            local[1 + c:] = _sum_product(centred, centred, (0, 2)).reshape(c)
        gathered = Tensor(xp.empty((dist.get_world_size(group), 1 + 2 * c), dtype=x.dtype))
        dist.all_gather_into_tensor(gathered, Tensor(local), group=group)
        counts, means, m2 = (gathered.data[:, :1], gathered.data[:, 1:1 + c],
                             gathered.data[:, 1 + c:])
        n = int(counts.sum())
        if n <= 1:
            raise ValueError(f"SyncBatchNorm: expected more than 1 value per channel over all "
                             f"ranks when training, got {n} (input {tuple(x.shape)} here)")
        mean = (counts * means).sum(axis=0) / n
        var = (m2 + counts * (means - mean) ** 2).sum(axis=0) / n
        if running is not None:
            _update_running(*running, mean, var, n)
        mean, invstd = mean.reshape(1, c, 1), (1.0 / xp.sqrt(var + eps)).reshape(1, c, 1)
        scale = invstd if weight is None else invstd * weight.reshape(1, c, 1)
        y = xv - mean
        y *= scale
        if bias is not None:
            y += bias.reshape(1, c, 1)
        ctx.save_for_backward(x, mean, invstd, weight)
        ctx.n, ctx.group = n, group
        return y.reshape(x.shape)

    @staticmethod
    def backward(ctx, g):
        x, mean, s, weight = ctx.saved_tensors
        c = x.shape[1]
        gv, xv = g.reshape(x.shape[0], c, -1), x.reshape(x.shape[0], c, -1)
        need_x, need_w, need_b = ctx.needs_input_grad
        sum_g = _sum_product(gv, None, (0, 2))  # this rank's sums, (1, C, 1)
        sum_gxhat = s * (_sum_product(gv, xv, (0, 2)) - mean * sum_g)
        gw = sum_gxhat.reshape(c).copy() if need_w else None
        gb = sum_g.reshape(c).copy() if need_b else None
        if not need_x:
            return None, gw, gb
        xp = get_array_module(g)
        sums = Tensor(xp.concatenate([sum_g.reshape(c), sum_gxhat.reshape(c)]))
        dist.all_reduce(sums, group=ctx.group)  # the global batch's Σg and Σg·x̂
        total_g, total_gxhat = (sums.data[:c].reshape(1, c, 1),
                                sums.data[c:].reshape(1, c, 1))
        k = s if weight is None else s * weight.reshape(1, c, 1)
        a = -s * total_gxhat / ctx.n  # dx = k·(g + a·x + b), x̂ = s·(x - μ) expanded
        b = -total_g / ctx.n - mean * a
        gx = xp.multiply(xv, a)
        gx += b
        gx += gv
        gx *= k
        return gx.reshape(x.shape), gw, gb


class SyncBatchNorm(_BatchNorm):
    """BatchNorm over the batch of all ranks (arguments as ``BatchNorm2d``). Without an
    initialised multi-rank group, or in eval mode, it is a plain BatchNorm."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True,
                 process_group: Any = None, device=None, dtype=None, *, bias: bool = True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device,
                         dtype, bias=bias)
        self.process_group = process_group

    def _check_input(self, x: Tensor) -> None:
        if x.ndim < 2:
            raise ValueError(f"SyncBatchNorm: expected at least 2D input, got {x.ndim}D input "
                             f"of shape {x.shape}")
        if x.shape[1] != self.num_features:
            raise ValueError(f"SyncBatchNorm: expected {self.num_features} channels (dim 1), "
                             f"got input of shape {x.shape}")

    def forward(self, x: Tensor) -> Tensor:
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        self._check_input(x)
        counting = self.track_running_stats
        running = _running_arrays(self.running_mean, self.running_var,
                                  self._momentum()) if counting else None
        y = SyncBatchNormFunction.apply(x, self.weight, self.bias, eps=self.eps,
                                        running=running, group=self.process_group)
        if counting:
            self.num_batches_tracked.data += 1
        return y

    @classmethod
    def convert_sync_batchnorm(cls, module: Module, process_group: Any = None) -> Module:
        """``module`` with every BatchNorm replaced by a SyncBatchNorm that shares its
        parameters and buffers (the same tensors: an optimizer built before still holds
        them). Returns the converted module (a new one when ``module`` is a BatchNorm)."""
        converted = module
        if isinstance(module, _BatchNorm) and not isinstance(module, SyncBatchNorm):
            converted = cls(module.num_features, module.eps, module.momentum, module.affine,
                            module.track_running_stats, process_group,
                            bias=module.bias is not None)
            for name, p in module._parameters.items():
                converted.register_parameter(name, p)
            for name, b in module._buffers.items():
                converted.register_buffer(name, b)
            converted.training = module.training
        for name, child in list(module._modules.items()):
            if child is not None:
                converted.add_module(name, cls.convert_sync_batchnorm(child, process_group))
        return converted
