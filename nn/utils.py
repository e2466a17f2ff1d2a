"""Training and deployment helpers: gradient clipping and Conv–BatchNorm fusion.

Fusion (the lecture's "zero overhead at test time"): in eval mode BatchNorm is the
per-channel affine map y = γ·(x − μ)/√(σ² + ε) + β with fixed running μ, σ². After a
convolution z = W∗x + b it folds into the convolution itself:

    s  = γ / √(σ² + ε)            (one scale per output channel)
    W' = W · s                    (each output channel's filter scaled)
    b' = (b − μ) · s + β

Which pairs are fused: consecutive children ``Conv2d`` → ``BatchNorm2d`` of every
``Sequential``, and the pairs a module declares in a class attribute naming its
own children, e.g. a ResNet block::

    class BasicBlock(nn.Module):
        fuse_pairs = [("conv1", "bn1"), ("conv2", "bn2")]

(dotted paths below the module are allowed: ``("downsample.0", "downsample.1")``).
The declaring module promises that the BatchNorm is applied directly to that
convolution's output; each fused BatchNorm is replaced by ``Identity``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable

import tensorgrad as tg
from tensorgrad.backend import get_array_module
from tensorgrad.tensor import Tensor

from .conv import Conv2d
from .module import Identity, Module, Parameter, Sequential
from .normalization import BatchNorm2d


@tg.no_grad()
def clip_grad_norm_(parameters: Tensor | Iterable[Tensor], max_norm: float,
                    norm_type: float = 2.0, error_if_nonfinite: bool = False) -> Tensor:
    """Scale all gradients together so that their joint norm is at most ``max_norm``.

    total = ‖(‖g₁‖, ‖g₂‖, …)‖ (the p-norm of all gradients as one vector); when
    total > max_norm every gradient is multiplied by max_norm / (total + 1e-6).
    Returns ``total`` (before clipping) as a 0-d Tensor.
    """
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    with_grad = [p for p in parameters if p.grad is not None]
    grads = [p.grad.data for p in with_grad]
    norm_type = float(norm_type)
    if not grads:
        return tg.tensor(0.0)
    xp = get_array_module(grads[0])
    if norm_type == math.inf:
        norms = xp.stack([xp.abs(g).max() for g in grads])
        total = norms.max()
    elif norm_type == -math.inf:  # the smallest magnitude, as torch.linalg.vector_norm
        norms = xp.stack([xp.abs(g).min() for g in grads])
        total = norms.min()
    elif norm_type == 0:  # the "0-norm" counts nonzeros: of each gradient, then of those
        dtype = grads[0].dtype
        norms = xp.asarray([int(xp.count_nonzero(g)) for g in grads], dtype=dtype)
        total = xp.asarray(xp.count_nonzero(norms), dtype=dtype)
    else:
        norms = xp.stack([(xp.abs(g) ** norm_type).sum() ** (1.0 / norm_type) for g in grads])
        total = (norms**norm_type).sum() ** (1.0 / norm_type)
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise RuntimeError(f"the total norm of order {norm_type} of the gradients is "
                           f"non-finite ({float(total)}), so it cannot be clipped")
    coef = min(float(max_norm) / (float(total) + 1e-6), 1.0)
    if coef < 1.0:
        for p in with_grad:  # not in place: two leaves may share one gradient array
            p.grad.data = p.grad.data * p.grad.dtype.type(coef)
    return Tensor(total)


def fold_bn_into_conv(conv: Conv2d, bn: BatchNorm2d) -> None:
    """Rewrite ``conv``'s weight and bias (in place) so that ``conv`` alone computes
    ``bn(conv(x))`` in eval mode."""
    xp = get_array_module(conv.weight.data)
    w = conv.weight.data
    dtype = w.dtype
    std = xp.sqrt(bn.running_var.data.astype(dtype) + dtype.type(bn.eps))
    gamma = bn.weight.data if bn.weight is not None else xp.ones_like(std)
    beta = bn.bias.data if bn.bias is not None else xp.zeros_like(std)
    scale = gamma / std
    bias = conv.bias.data if conv.bias is not None else xp.zeros_like(std)
    conv.weight = Parameter(w * scale.reshape(-1, 1, 1, 1))
    conv.bias = Parameter((bias - bn.running_mean.data.astype(dtype)) * scale + beta)


def _fusable(conv: Module, bn: Module) -> bool:
    return (isinstance(conv, Conv2d) and isinstance(bn, BatchNorm2d)
            and bn.track_running_stats and bn.num_features == conv.out_channels)


def _parent_and_name(root: Module, path: str) -> tuple[Module, str]:
    parent_path, _, name = path.rpartition(".")
    return root.get_submodule(parent_path), name


def fuse_conv_bn(model: Module) -> Module:
    """An eval-mode deep copy of ``model`` with every Conv2d → BatchNorm2d pair folded
    into the Conv2d and the BatchNorm replaced by Identity. ``model`` is unchanged."""
    fused = copy.deepcopy(model).eval()
    pairs: list[tuple[Module, str, Module, str]] = []  # (conv owner, conv name, bn owner, bn)
    for module in fused.modules():
        if isinstance(module, Sequential):
            names = list(module._modules)
            for a, b in zip(names, names[1:]):
                pairs.append((module, a, module, b))
        for conv_path, bn_path in getattr(type(module), "fuse_pairs", ()):
            pairs.append((*_parent_and_name(module, conv_path),
                          *_parent_and_name(module, bn_path)))
    done = set()
    for conv_owner, conv_name, bn_owner, bn_name in pairs:
        conv, bn = conv_owner._modules.get(conv_name), bn_owner._modules.get(bn_name)
        if conv is None or bn is None or not _fusable(conv, bn) or id(bn) in done:
            continue
        fold_bn_into_conv(conv, bn)
        setattr(bn_owner, bn_name, Identity())
        done.add(id(bn))
    return fused
