"""``tg.autograd.functional``: Jacobians, Hessians and their products, as PyTorch's.

All are built on ``grad``: a vector-Jacobian product is one backward pass; a
Jacobian-vector product is two (the "double backward trick": ``u ↦ vjp(u)`` is
linear in ``u``, so differentiating it w.r.t. ``u`` gives ``J v``); a Hessian-vector
product is the gradient of ``<∇f, v>``. A full Jacobian takes one backward pass per
output element, as PyTorch's does without ``vectorize``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .api import grad


def _tensor_type():
    from ..tensor import Tensor

    return Tensor


def _as_tuple(x: Any) -> tuple[tuple, bool]:
    Tensor = _tensor_type()
    if isinstance(x, Tensor):
        return (x,), False
    return tuple(x), True


def _prepare(inputs: Any) -> tuple[tuple, bool]:
    """Fresh leaves that require grad, with the inputs' values (the caller's tensors
    and their graphs are left alone, as PyTorch's functional API does)."""
    inputs, is_tuple = _as_tuple(inputs)
    return tuple(t.detach().requires_grad_(True) for t in inputs), is_tuple


def _grads(outputs, inputs, grad_outputs, create_graph: bool) -> tuple:
    """``grad`` with zeros (instead of None) for inputs the outputs do not use."""
    Tensor = _tensor_type()
    gs = grad(outputs, inputs, grad_outputs, retain_graph=True, create_graph=create_graph,
              allow_unused=True)
    return tuple(Tensor._make(t.data * 0, None) if g is None else g
                 for g, t in zip(gs, inputs))


def _ones_like_scalar(out) -> None:
    if out.numel() != 1:
        raise RuntimeError(f"the function must return a single-element tensor, got shape "
                           f"{out.shape}; pass v= of that shape")


def _detach(xs: tuple, create_graph: bool) -> tuple:
    return xs if create_graph else tuple(x.detach() for x in xs)


def vjp(func: Callable, inputs: Any, v: Any = None, create_graph: bool = False,
        strict: bool = False) -> tuple:
    """(func(inputs), vᵀ J): the vector-Jacobian product, one backward pass."""
    xs, is_tuple = _prepare(inputs)
    out = func(*xs)
    outs, out_tuple = _as_tuple(out)
    if v is None:
        for o in outs:
            _ones_like_scalar(o)
    vs = None if v is None else _as_tuple(v)[0]
    result = _detach(_grads(outs, xs, vs, create_graph), create_graph)
    out = tuple(o.detach() for o in outs) if out_tuple else outs[0].detach()
    return out, result if is_tuple else result[0]


def jvp(func: Callable, inputs: Any, v: Any = None, create_graph: bool = False,
        strict: bool = False) -> tuple:
    """(func(inputs), J v): the Jacobian-vector product, by the double backward trick."""
    Tensor = _tensor_type()
    xs, is_tuple = _prepare(inputs)
    out = func(*xs)
    outs, out_tuple = _as_tuple(out)
    if v is None:
        for x in xs:
            _ones_like_scalar(x)
        vs = tuple(Tensor._make(x.data * 0 + 1, None) for x in xs)
    else:
        vs = _as_tuple(v)[0]
    # u is a dummy cotangent; g(u) = uᵀ J is linear in u, and d<g(u), v>/du = J v
    us = tuple(Tensor._make(o.data * 0, None).requires_grad_(True) for o in outs)
    g = _grads(outs, xs, us, create_graph=True)
    result = _detach(_grads(g, us, vs, create_graph), create_graph)
    out = tuple(o.detach() for o in outs) if out_tuple else outs[0].detach()
    return out, result if out_tuple else result[0]


def hvp(func: Callable, inputs: Any, v: Any, create_graph: bool = False,
        strict: bool = False) -> tuple:
    """(func(inputs), H v) for a scalar ``func``: the gradient of <∇func, v>."""
    xs, is_tuple = _prepare(inputs)
    out = func(*xs)
    _ones_like_scalar(out)
    vs = _as_tuple(v)[0]
    g = _grads(out, xs, None, create_graph=True)
    result = _detach(_grads(g, xs, vs, create_graph), create_graph)
    return out.detach(), result if is_tuple else result[0]


def vhp(func: Callable, inputs: Any, v: Any, create_graph: bool = False,
        strict: bool = False) -> tuple:
    """(func(inputs), vᵀ H); the same as ``hvp`` since a Hessian is symmetric."""
    return hvp(func, inputs, v, create_graph, strict)


def jacobian(func: Callable, inputs: Any, create_graph: bool = False,
             strict: bool = False) -> Any:
    """d func / d inputs: for one input and one output a Tensor of shape
    ``output.shape + input.shape``; tuples of them for tuples (outputs first)."""
    from ..ops import stack

    Tensor = _tensor_type()
    xs, in_tuple = _prepare(inputs)
    out = func(*xs)
    outs, out_tuple = _as_tuple(out)
    rows = []
    for o in outs:
        flat = o.reshape(-1)
        per_input = [[] for _ in xs]
        for k in range(flat.shape[0]):  # one backward pass per output element
            gs = _grads((flat[k],), xs, None, create_graph)
            for j, g in enumerate(gs):
                per_input[j].append(g)
        blocks = []
        for j, x in enumerate(xs):
            if per_input[j]:
                block = stack(per_input[j]).reshape(*o.shape, *x.shape)
            else:
                block = Tensor._make(x.data.reshape(1, -1)[:0].reshape(*o.shape, *x.shape), None)
            blocks.append(_detach((block,), create_graph)[0])
        rows.append(tuple(blocks) if in_tuple else blocks[0])
    return tuple(rows) if out_tuple else rows[0]


def hessian(func: Callable, inputs: Any, create_graph: bool = False,
            strict: bool = False) -> Any:
    """d² func / d inputs² for a scalar ``func``: shape ``input.shape + input.shape``
    (a tuple of tuples for several inputs)."""
    xs, in_tuple = _prepare(inputs)

    def gradient(*args):
        out = func(*args)
        _ones_like_scalar(out)
        gs = _grads(out.reshape(()), args, None, create_graph=True)
        return gs if in_tuple else gs[0]

    return jacobian(gradient, xs if in_tuple else xs[0], create_graph)
