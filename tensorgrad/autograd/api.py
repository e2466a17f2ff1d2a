"""The public entry points of the backward pass, with PyTorch's signatures:
``tg.autograd.backward`` (what ``Tensor.backward`` calls) and ``tg.autograd.grad``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .. import backend
from .engine import run_backward


def _as_list(tensors: Any, what: str) -> list:
    from ..tensor import Tensor

    if isinstance(tensors, Tensor):
        return [tensors]
    tensors = list(tensors)
    for t in tensors:
        if not isinstance(t, Tensor):
            raise TypeError(f"{what} must be Tensors, got {type(t).__name__}")
    return tensors


def _seeds(tensors: list, grad_tensors: Sequence | None, create_graph: bool) -> list:
    """The gradient each output starts with: 1 for a scalar, else the given one."""
    from ..tensor import Tensor

    if grad_tensors is None:
        grad_tensors = [None] * len(tensors)
    elif isinstance(grad_tensors, Tensor) or hasattr(grad_tensors, "shape"):
        grad_tensors = [grad_tensors]
    grad_tensors = list(grad_tensors)
    if len(grad_tensors) != len(tensors):
        raise RuntimeError(f"got {len(grad_tensors)} gradients for {len(tensors)} outputs")
    seeds = []
    for i, (t, g) in enumerate(zip(tensors, grad_tensors)):
        if not t.requires_grad:
            raise RuntimeError(f"element {i} of tensors does not require grad and does not "
                               f"have a grad_fn")
        xp = backend.get_array_module(t.data)
        if g is None:
            if t.data.size != 1:
                raise RuntimeError(
                    f"grad can be implicitly created only for scalar outputs; output {i} "
                    f"has shape {t.shape}: pass a gradient of that shape")
            g = Tensor._make(xp.ones_like(t.data), None) if create_graph else \
                xp.ones_like(t.data)
        else:
            if isinstance(g, Tensor):
                if g.device != t.device:
                    raise RuntimeError(f"gradient {i} is on {g.device} but output {i} is on "
                                       f"{t.device}")
                g = g if create_graph else g.data
            if not create_graph or not isinstance(g, Tensor):
                g = xp.asarray(g, dtype=t.dtype)
                if create_graph:
                    g = Tensor._make(g, None)
            if tuple(g.shape) != t.shape:
                raise RuntimeError(f"gradient {i} has shape {tuple(g.shape)} but the output "
                                   f"has shape {t.shape}")
        seeds.append(g)
    return seeds


def backward(tensors: Any, grad_tensors: Any = None, retain_graph: bool | None = None,
             create_graph: bool = False, inputs: Any = None) -> None:
    """Accumulate the gradients of ``tensors`` (seeded with ``grad_tensors``) into the
    ``.grad`` of every leaf that requires grad, or only of ``inputs`` when given."""
    tensors = _as_list(tensors, "tensors")
    seeds = _seeds(tensors, grad_tensors, create_graph)
    retain = create_graph if retain_graph is None else retain_graph
    if inputs is None:
        run_backward(tensors, seeds, retain, create_graph)
        return
    inputs = _as_list(inputs, "inputs")
    if not inputs:
        raise RuntimeError("backward: inputs argument must be a non-empty list of Tensors")
    grads = run_backward(tensors, seeds, retain, create_graph, inputs=inputs)
    for t, g in zip(inputs, grads):
        if g is not None:
            t._accumulate(g)


def grad(outputs: Any, inputs: Any, grad_outputs: Any = None, retain_graph: bool | None = None,
         create_graph: bool = False, allow_unused: bool = False) -> tuple:
    """The gradients of ``outputs`` w.r.t. ``inputs``, as a tuple; ``.grad`` is left alone.

    With ``create_graph=True`` the returned gradients carry a graph of their own, so
    they can be differentiated again (gradient penalties, Hessian-vector products).
    """
    from ..tensor import Tensor

    outputs = _as_list(outputs, "outputs")
    inputs = _as_list(inputs, "inputs")
    for i, t in enumerate(inputs):
        if not t.requires_grad:
            raise RuntimeError(f"grad: input {i} (shape {t.shape}) does not require grad")
    seeds = _seeds(outputs, grad_outputs, create_graph)
    retain = create_graph if retain_graph is None else retain_graph
    grads = run_backward(outputs, seeds, retain, create_graph, inputs=inputs)
    result = []
    for i, (t, g) in enumerate(zip(inputs, grads)):
        if g is None:
            if not allow_unused:
                raise RuntimeError(
                    f"grad: input {i} (shape {t.shape}) was not used in the graph of the "
                    f"outputs; pass allow_unused=True to get None for it")
            result.append(None)
        else:
            result.append(g if isinstance(g, Tensor) else Tensor._make(g.copy(), None))
    return tuple(result)
