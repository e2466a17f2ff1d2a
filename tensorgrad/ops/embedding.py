"""From class indices to vectors: ``one_hot`` and the ``embedding`` lookup.

``embedding(input, weight)`` is ``weight[input]``: row i of the table for every index
i. Its backward scatters the output gradient back into a zero table with
``xp.add.at``, which *accumulates* where an index repeats (``gw[idx] += g`` would keep
only one of the repeats). The ``padding_idx`` row gets no gradient, so it stays as
initialised (zeros in ``nn.Embedding``).
"""

from __future__ import annotations

import numbers

import numpy as np

from ..autograd import Function
from ..backend import get_array_module, to_numpy
from ..tensor import Tensor


def onehot_array(indices, num_classes: int, dtype, axis: int = -1):
    """The one-hot encoding of an integer array, its classes along the new ``axis``
    of the result (-1: last, as ``one_hot``; 1: the class axis of a loss input)."""
    xp = get_array_module(indices)
    axis = axis % (indices.ndim + 1)
    shape = [1] * (indices.ndim + 1)
    shape[axis] = num_classes
    classes = xp.arange(num_classes).reshape(shape)
    return (xp.expand_dims(indices, axis) == classes).astype(dtype)


def _index_range(indices) -> tuple[int, int]:
    """(min, max) of a non-empty integer array, in one host transfer."""
    xp = get_array_module(indices)
    lo, hi = to_numpy(xp.stack([indices.min(), indices.max()]))
    return int(lo), int(hi)


def _check_indices(op: str, indices) -> None:
    if not isinstance(indices, Tensor):
        raise TypeError(f"{op}: input must be a Tensor of indices, got {type(indices).__name__}")
    if indices.dtype.kind not in "iu":
        raise TypeError(f"{op}: input must hold indices of an integer dtype, got dtype "
                        f"{indices.dtype}")


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """int64 tensor of shape (*tensor.shape, num_classes) with a 1 at each index.
    ``num_classes=-1`` takes one more than the largest index, as PyTorch."""
    _check_indices("one_hot", tensor)
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)):
        raise TypeError(f"one_hot: num_classes must be an int, got {num_classes!r}")
    num_classes = int(num_classes)
    if num_classes < -1:
        raise ValueError(f"one_hot: num_classes must be -1 or non-negative, got {num_classes}")
    if tensor.numel() == 0:
        if num_classes == -1:
            raise ValueError("one_hot: cannot infer the number of classes from an empty "
                             "tensor; pass num_classes")
    else:
        lo, hi = _index_range(tensor.data)
        if lo < 0:
            raise IndexError(f"one_hot: class values must be non-negative, got {lo}")
        if num_classes == -1:
            num_classes = hi + 1
        elif hi >= num_classes:
            raise IndexError(f"one_hot: class value {hi} is out of range for "
                             f"num_classes={num_classes} (valid values are "
                             f"0..{num_classes - 1})")
    return Tensor._make(onehot_array(tensor.data, num_classes, np.int64), tensor.device)


class Embedding(Function):
    """z = weight[indices];  dweight = Σ over the positions of each index of g
    (none for the padding row). Under create_graph the scatter-add is recorded: its
    derivative gathers the rows back."""

    differentiable_backward = True

    @staticmethod
    def forward(ctx, weight, indices, *, padding_idx):
        ctx.save_for_backward(indices)
        ctx.shape, ctx.padding_idx = weight.shape, padding_idx
        return weight[indices]

    @staticmethod
    def backward(ctx, g):
        (indices,) = ctx.saved_tensors
        xp = get_array_module(g)
        gw = xp.zeros_like(g, shape=ctx.shape)  # (zeros_like: also recorded under create_graph)
        xp.add.at(gw, indices.reshape(-1), g.reshape(-1, ctx.shape[1]))
        if ctx.padding_idx is not None:
            gw[ctx.padding_idx] = 0
        return gw, None


def embedding(input: Tensor, weight: Tensor, padding_idx: int | None = None,  # noqa: A002
              max_norm: float | None = None, norm_type: float = 2.0,
              scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    """Rows of ``weight`` (num_embeddings, embedding_dim) at the indices ``input``:
    shape (*input.shape, embedding_dim). ``padding_idx``'s row gets no gradient.
    ``max_norm``, ``scale_grad_by_freq`` and ``sparse`` are not supported (they raise)."""
    op = "embedding"
    if max_norm is not None or scale_grad_by_freq or sparse:
        raise ValueError(f"{op}: max_norm, scale_grad_by_freq and sparse are not supported "
                         f"(got max_norm={max_norm!r}, scale_grad_by_freq={scale_grad_by_freq!r}"
                         f", sparse={sparse!r})")
    _check_indices(op, input)
    if not isinstance(weight, Tensor):
        raise TypeError(f"{op}: weight must be a Tensor, got {type(weight).__name__}")
    if weight.ndim != 2:
        raise ValueError(f"{op}: weight must be 2-D (num_embeddings, embedding_dim), got "
                         f"shape {weight.shape}")
    num_embeddings = weight.shape[0]
    padding_idx = normalize_padding_idx(op, padding_idx, num_embeddings)
    if input.numel():
        lo, hi = _index_range(input.data)
        bad = lo if lo < 0 else hi
        if lo < 0 or hi >= num_embeddings:
            raise IndexError(f"{op}: index {bad} is out of range for {num_embeddings} "
                             f"embeddings (valid indices are 0..{num_embeddings - 1})")
    return Embedding.apply(weight, input, padding_idx=padding_idx)


def normalize_padding_idx(op: str, padding_idx, num_embeddings: int) -> int | None:
    """``padding_idx`` in [0, num_embeddings) (a negative one counts from the end, as
    PyTorch), or None."""
    if padding_idx is None:
        return None
    if isinstance(padding_idx, bool) or not isinstance(padding_idx, numbers.Integral):
        raise TypeError(f"{op}: padding_idx must be an int or None, got {padding_idx!r}")
    if not -num_embeddings <= padding_idx < num_embeddings:
        raise ValueError(f"{op}: padding_idx must be within num_embeddings "
                         f"({num_embeddings}), got {padding_idx}")
    return int(padding_idx) % num_embeddings
