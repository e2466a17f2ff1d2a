"""The backward pass: order the recorded graph, then apply the chain rule.

The recorded nodes form a DAG from the output back to the leaves. ``run_backward``
orders it topologically with an iterative depth-first search (no recursion, so a
chain of 20,000 ops or ResNet-152 is fine), then walks that order from the output:
each node's ``Function.backward`` turns the gradient of its outputs into gradients
of its inputs. Gradients of the same tensor add up; a leaf that requires grad
accumulates into ``.grad``.

Broadcasting is handled once, here: whatever an op's backward returns is summed
back to the shape of its input by ``unbroadcast``.
"""

from __future__ import annotations

from typing import Any

from .. import backend
from . import traced
from .function import Node, observers
from .grad_mode import enable_grad

# ------------------------------------------------------------------ broadcasting


def unbroadcast(grad: Any, shape: tuple[int, ...]) -> Any:
    """Sum ``grad`` down to ``shape``: the adjoint of NumPy broadcasting.

    Broadcasting prepends dimensions and stretches size-1 ones; the gradient of
    a stretched value is the sum over the positions it was copied to.
    """
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra < 0:
        raise RuntimeError(f"gradient of shape {grad.shape} cannot reduce to {shape}")
    axes = tuple(range(extra)) + tuple(
        extra + i for i, n in enumerate(shape) if n == 1 and grad.shape[extra + i] != 1
    )
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    if extra:
        grad = grad.reshape(grad.shape[extra:])
    if grad.shape != shape:
        raise RuntimeError(f"gradient of shape {grad.shape} cannot reduce to {shape}")
    return grad


# ------------------------------------------------------------------ backward


def topological_order(roots: Node | list[Node]) -> list[Node]:
    """Nodes reachable from ``roots``, each after every node it consumes.

    An iterative post-order depth-first search: the explicit stack replaces the
    recursion that would overflow on very deep graphs.
    """
    order: list[Node] = []
    visited: set[Node] = set()
    for root in roots if isinstance(roots, list) else [roots]:
        if root in visited:
            continue
        visited.add(root)
        stack = [(root, iter(root.edges))]
        while stack:
            node, edges = stack[-1]
            for edge in edges:
                child = edge[0] if edge is not None else None
                if child is not None and child not in visited:
                    visited.add(child)
                    stack.append((child, iter(child.edges)))
                    break
            else:  # every input done: the node can come after them
                stack.pop()
                order.append(node)
    return order


def run_backward(tensors: list, seeds: list, retain_graph: bool = False,
                 create_graph: bool = False, inputs: list | None = None) -> list | None:
    """The chain rule over the graph behind ``tensors``, seeded with ``seeds`` (d out/d
    tensor, one per tensor).

    Without ``inputs``, every leaf that requires grad accumulates its gradient into
    ``.grad``. With ``inputs`` (``autograd.grad``, ``backward(inputs=...)``) only the
    gradients of those tensors are computed, and returned (None where none flows).
    With ``create_graph`` the gradients are Tensors whose graph records this pass.
    """
    if create_graph:
        seeds = [traced.wrap(s) for s in seeds]
    roots = [t.grad_fn for t in tensors if t.grad_fn is not None]
    order = topological_order(roots)
    for node in order:
        if node.freed:
            node.ctx.saved_tensors  # raises the "second time" error  # noqa: B018
    wanted_leaves, wanted_outputs, results = {}, {}, None
    if inputs is not None:
        results = [None] * len(inputs)
        for k, t in enumerate(inputs):
            if t.grad_fn is None:
                wanted_leaves[id(t)] = k
            else:
                wanted_outputs[(t.grad_fn, t._output_index)] = k
    # grads[node][i]: gradient w.r.t. output i of node, summed over its consumers
    grads: dict[Node, list] = {}
    # id(leaf) -> [leaf, gradient summed over its uses]: a leaf's hooks see the total once
    leaf_grads: dict[int, list] = {}
    for t, seed in zip(tensors, seeds):
        if t.grad_fn is None:
            _add_leaf(leaf_grads, t, seed, False)
        else:
            slots = grads.setdefault(t.grad_fn, [None] * len(t.grad_fn.outputs))
            i = t._output_index
            slots[i] = seed if slots[i] is None else slots[i] + seed
    needed = None if inputs is None else _needed(order, wanted_leaves, wanted_outputs)
    # uses[id(leaf)]: recorded edges into the leaf not walked yet. After the last one its
    # gradient is final and goes into .grad at once, so that its hooks run while the
    # rest of backward goes on (DistributedDataParallel starts all-reduces there)
    uses = _leaf_uses(order) if inputs is None else {}
    for node in reversed(order):
        out_grads = grads.pop(node, None)  # released as soon as it is consumed
        if out_grads is not None:
            if node.hooks or node.retained:
                out_grads = _run_hooks(node, out_grads)
            for i, g in enumerate(out_grads) if wanted_outputs else ():
                if (node, i) in wanted_outputs:
                    results[wanted_outputs[(node, i)]] = g
            if needed is None or node in needed:
                call = _call_backward_traced if create_graph else _call_backward
                in_grads = call(node, out_grads)
                if not retain_graph:
                    node.ctx.free()
                    node.freed = True
                _pass_on(node, in_grads, out_grads, grads, leaf_grads, create_graph)
        if uses:
            _release_leaves(node, uses, leaf_grads)
    for leaf, g, owned in leaf_grads.values():
        if inputs is None:
            leaf._accumulate(_result(g), owned)
        elif id(leaf) in wanted_leaves:
            results[wanted_leaves[id(leaf)]] = g
    if results is not None:
        results = [None if g is None else _result(g) for g in results]
    return results


def _pass_on(node: Node, in_grads: tuple, out_grads: list, grads: dict, leaf_grads: dict,
             create_graph: bool) -> None:
    """The chain rule's sum: each input's gradient is added to what its producer (the
    edge's node, at the edge's output) or its leaf has received so far."""
    for inp, edge, g in zip(node.inputs, node.edges, in_grads):
        if g is None or edge is None:
            continue
        g = _fit(node, g, inp)
        child, i = edge
        if child is None:
            _add_leaf(leaf_grads, inp, g, not create_graph and _is_fresh(g, in_grads, out_grads))
            continue
        slots = grads.setdefault(child, [None] * len(child.outputs))
        slots[i] = g if slots[i] is None else slots[i] + g


def _release_leaves(node: Node, uses: dict, leaf_grads: dict) -> None:
    """``node`` was the last use of a leaf: its gradient is final, into ``.grad`` now."""
    for inp, edge in zip(node.inputs, node.edges):
        if edge is not None and edge[0] is None and id(inp) in uses:
            uses[id(inp)] -= 1
            if uses[id(inp)] == 0 and id(inp) in leaf_grads:
                leaf, g, owned = leaf_grads.pop(id(inp))
                leaf._accumulate(_result(g), owned)


def _leaf_uses(order: list[Node]) -> dict[int, int]:
    uses: dict[int, int] = {}
    for node in order:
        for inp, edge in zip(node.inputs, node.edges):
            if edge is not None and edge[0] is None:
                uses[id(inp)] = uses.get(id(inp), 0) + 1
    return uses


def _add_leaf(leaf_grads: dict, leaf, g, fresh: bool) -> None:
    entry = leaf_grads.setdefault(id(leaf), [leaf, None, False])
    if entry[1] is None:
        entry[1], entry[2] = g, fresh
    else:
        entry[1], entry[2] = entry[1] + g, True


def _result(g: Any) -> Any:
    """A gradient as the caller gets it: a raw array, or a Tensor under create_graph."""
    return g.t if isinstance(g, traced.TracedArray) else g


def _needed(order: list[Node], leaves: dict, outputs: dict) -> set[Node]:
    """The nodes whose backward leads to a wanted input: no other backward need run."""
    run: set[Node] = set()
    for node in order:  # children come first
        for inp, e in zip(node.inputs, node.edges):
            if e is not None and (id(inp) in leaves if e[0] is None
                                  else e[0] in run or e in outputs):
                run.add(node)
                break
    return run


def _fit(node: Node, g: Any, inp: Any) -> Any:
    """The gradient of input ``inp`` as backward returned it, summed back over
    broadcasting and cast to the input's dtype; another shape is the Function's bug."""
    if g.shape != inp.shape:
        try:
            g = unbroadcast(g, inp.shape)
        except RuntimeError:
            raise RuntimeError(
                f"function {node.name()}Backward returned an invalid gradient: got shape "
                f"{tuple(g.shape)} but expected shape compatible with {inp.shape}"
            ) from None
    if g.dtype != inp.dtype:
        g = g.astype(inp.dtype)
    return g


def _is_fresh(g: Any, in_grads: tuple, out_grads: list) -> bool:
    """Whether ``g`` is a new array that no one else holds: not a view, not a gradient
    passed through unchanged (x + y returns its ``g`` twice), not returned twice.
    Such an array can become a leaf's ``.grad`` as it is, saving a copy."""
    return (g.base is None and not any(h is g for h in out_grads)
            and sum(h is g for h in in_grads) <= 1)


def _call_backward(node: Node, out_grads: list) -> tuple:
    if any(g is None for g in out_grads):  # an unused output of a multi-output op
        xp = backend.get_array_module(next(g for g in out_grads if g is not None))
        out_grads = [
            xp.zeros(shape, dtype) if g is None else g
            for g, (shape, dtype) in zip(out_grads, node.outputs)
        ]
    if observers:
        for obs in observers:
            obs.before_backward(node, out_grads)
    result = node.function.backward(node.ctx, *out_grads)
    if observers:
        for obs in observers:
            obs.after_backward(node, out_grads, result)
    return _gradient_count(node, result)


def _gradient_count(node: Node, result: Any) -> tuple:
    if not isinstance(result, tuple):
        result = (result,)
    n = len(node.inputs)
    if len(result) > n and all(g is None for g in result[n:]):
        result = result[:n]  # extra Nones are harmless (as PyTorch)
    if len(result) != n:
        raise RuntimeError(
            f"function {node.name()} returned an incorrect number of gradients "
            f"(expected {n}, got {len(result)})"
        )
    return result


def _call_backward_traced(node: Node, out_grads: list) -> tuple:
    """``node``'s backward on traced arrays, so that it records a graph (create_graph)."""
    fn = node.function
    if getattr(fn.backward, "once_differentiable", False):
        return _once_differentiable(node, out_grads)
    if fn.composite is not None and not fn.differentiable_backward:
        return _composite_backward(node, out_grads)
    if not fn.differentiable_backward:
        raise RuntimeError(
            f"create_graph=True reached {node.name()}, whose backward works on raw arrays "
            f"and cannot be differentiated again. To make it twice differentiable, write "
            f"its backward with operators and xp = tg.get_array_module(g) functions only "
            f"and set differentiable_backward = True on the class; or mark the backward "
            f"@tg.autograd.once_differentiable to allow create_graph until a second "
            f"derivative is taken through it"
        )
    if any(g is None for g in out_grads):  # an unused output of a multi-output op
        xp = backend.get_array_module(next(g for g in out_grads if g is not None).t.data)
        out_grads = [traced.wrap(xp.zeros(shape, dtype)) if g is None else g
                     for g, (shape, dtype) in zip(out_grads, node.outputs)]
    node.ctx._trace = node
    try:
        with enable_grad():
            result = _gradient_count(node, fn.backward(node.ctx, *out_grads))
    finally:
        node.ctx._trace = None
    return tuple(None if g is None else traced.wrap(g) for g in result)


def _composite_backward(node: Node, out_grads: list) -> tuple:
    """A fused op under create_graph: its forward is run again as the composition of
    tensor ops it stands for (``Function.composite``), and that is differentiated."""
    from ..tensor import Tensor
    from .api import grad

    node.ctx.saved_tensors  # noqa: B018 - the inputs must not have changed since
    with enable_grad():
        # each input through a fresh view of itself: the gradient w.r.t. that view is the
        # partial derivative (w.r.t. the input itself it would also flow on through
        # another input computed from it, y = f(w, 0.5·w), and count twice)
        inputs = [t.reshape(t.shape) if e is not None else t
                  for t, e in zip(node.inputs, node.edges)]
        wrt = [t for t, e in zip(inputs, node.edges) if e is not None]
        outs = node.function.composite(*inputs, **node.ctx._kwargs)
        outs = outs if isinstance(outs, tuple) else (outs,)
        pairs = [(o, g) for o, g in zip(outs, out_grads)
                 if g is not None and isinstance(o, Tensor) and o.requires_grad]
        grads = iter(grad([o for o, _ in pairs], wrt, [g.t for _, g in pairs],
                          create_graph=True, allow_unused=True)) if pairs else iter(())
    result = []
    for e in node.edges:
        g = next(grads, None) if e is not None else None
        result.append(None if g is None else traced.wrap(g))
    return tuple(result)


def _once_differentiable(node: Node, out_grads: list) -> tuple:
    """A once-differentiable backward runs on raw arrays; each gradient it returns is
    tied to the graph by a ``DelayedError`` node, which raises if differentiated."""
    from ..tensor import Tensor
    from .function import DelayedError

    raw = [None if g is None else g.t.data for g in out_grads]
    result = _call_backward(node, raw)
    sources = [g.t for g in out_grads if g is not None and g.t.requires_grad]
    sources += [t for t in node.inputs if isinstance(t, Tensor) and t.requires_grad]
    name = node.name()
    return tuple(None if g is None else traced.wrap(
        DelayedError.apply(*sources, values=g, name=name) if sources else Tensor._make(g, None))
        for g in result)


def _run_hooks(node: Node, out_grads: list) -> list:
    """The gradient hooks of ``node``'s outputs, in registration order, then
    ``retain_grad``'s copy into ``.grad`` (last, as PyTorch: it keeps the final value)."""
    from ..tensor import Tensor

    out_grads = list(out_grads)
    for i, hooks in (node.hooks or {}).items():
        if out_grads[i] is None:
            continue
        for hook in hooks:
            g = out_grads[i]
            if isinstance(g, traced.TracedArray):  # create_graph: the hook sees the Tensor
                new = hook(g.t)
                hook_result(hook, new, g.t.data)
                out_grads[i] = g if new is None else traced.wrap(new)
            else:
                out_grads[i] = hook_result(hook, hook(Tensor(g)), g)
    for i, ref in (node.retained or {}).items():
        tensor = ref()
        if tensor is not None and out_grads[i] is not None:
            g = out_grads[i]
            if isinstance(g, traced.TracedArray):
                tensor.grad = g.t if tensor.grad is None else tensor.grad + g.t
                continue
            # a copy: the engine goes on using this array (it may even be a read-only view)
            tensor.grad = Tensor._make(g.copy() if tensor.grad is None
                                       else tensor.grad.data + g, None)
    return out_grads


def hook_result(hook: Any, new: Any, grad: Any) -> Any:
    """The gradient after ``hook`` returned ``new``: unchanged for None, else ``new``,
    which must keep the gradient's shape and dtype (PyTorch refuses the same)."""
    if new is None:
        return grad
    arr = getattr(new, "data", new)
    name = getattr(hook, "__name__", repr(hook))
    if not hasattr(arr, "shape") or not hasattr(arr, "dtype"):
        raise TypeError(f"hook '{name}' returned {type(new).__name__}; a gradient hook "
                        f"returns a Tensor or None")
    if arr.shape != grad.shape:
        raise RuntimeError(f"hook '{name}' has changed the size of value: gradient of "
                           f"shape {grad.shape}, hook returned shape {arr.shape}")
    if arr.dtype != grad.dtype:
        raise RuntimeError(f"hook '{name}' has changed the type of value: gradient of "
                           f"dtype {grad.dtype}, hook returned dtype {arr.dtype}")
    return arr
