"""Reverse-mode automatic differentiation: ``Function``, the graph and ``backward``.

How it works, in three steps:

1. ``MyOp.apply(x, y)`` unwraps the tensors to raw arrays, runs ``MyOp.forward``
   and wraps the result in a new Tensor. If any input requires grad, the result
   also records *how it was made*: its ``grad_fn`` is a ``Node`` holding the
   Function, the context ``ctx`` (what forward saved) and the input tensors.
2. The recorded nodes form a DAG from the output back to the leaves.
   ``backward`` orders it topologically with an iterative depth-first search
   (no recursion, so a chain of 20,000 ops or ResNet-152 is fine).
3. Walking that order from the output, each node's ``Function.backward`` turns the
   gradient of its output into gradients of its inputs (chain rule). Gradients
   of the same tensor add up; a leaf that requires grad accumulates into ``.grad``.

Broadcasting is handled once, here: whatever an op's backward returns is summed
back to the shape of its input by ``unbroadcast``.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import threading
from typing import Any

import numpy as np

from . import backend

# ------------------------------------------------------------------ grad mode

_mode = threading.local()


def is_grad_enabled() -> bool:
    return getattr(_mode, "enabled", True)


class _GradMode(contextlib.ContextDecorator):
    """Context manager and decorator that sets grad mode, restoring it on exit."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self._saved: list[bool] = []

    def __enter__(self):
        self._saved.append(is_grad_enabled())
        _mode.enabled = self.enabled
        return self

    def __exit__(self, *exc):
        _mode.enabled = self._saved.pop()
        return False

    def __call__(self, fn):
        # a fresh instance per call so nested/recursive uses don't share the stack
        if inspect.isgeneratorfunction(fn):
            return self._wrap_generator(fn)

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with _GradMode(self.enabled):
                return fn(*args, **kwargs)

        return wrapper

    def _wrap_generator(self, fn):
        """A generator's body runs at each ``next``, after the call has returned: the
        mode is set around every step instead (as PyTorch), and the caller's mode holds
        between them."""
        enabled = self.enabled

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            gen = fn(*args, **kwargs)
            value = None
            while True:
                try:
                    with _GradMode(enabled):
                        item = gen.send(value)
                except StopIteration as stop:
                    return stop.value
                value = yield item

        return wrapper


def no_grad(fn=None):
    """Ops run inside record no graph: ``with tg.no_grad():``, ``@tg.no_grad()``
    or, as PyTorch also allows, ``@tg.no_grad`` without parentheses."""
    return _GradMode(False) if fn is None else _GradMode(False)(fn)


def enable_grad(fn=None):
    """Turns graph recording back on inside a ``no_grad`` region (same three forms)."""
    return _GradMode(True) if fn is None else _GradMode(True)(fn)


# ------------------------------------------------------------- instrumentation
# Observers that tensorgrad.profiler and tensorgrad.anomaly install; empty by default
# so an op pays one truth test for them.
observers: list[Any] = []


# ----------------------------------------------------------- Function and ctx


class Context:
    """What a Function's forward leaves for its backward."""

    def __init__(self, needs_input_grad: tuple[bool, ...], recording: bool):
        self.needs_input_grad = needs_input_grad
        self._recording = recording
        self._saved: tuple = ()

    def save_for_backward(self, *arrays: Any) -> None:
        # Nothing is kept when no input needs a gradient: no graph will use it.
        if self._recording:
            self._saved = arrays

    @property
    def saved_tensors(self) -> tuple:
        if self._saved is None:
            raise RuntimeError(
                "Trying to backward through the graph a second time (or directly access "
                "saved tensors after they have already been freed). Saved intermediate "
                "values of the graph are freed when you call .backward(). Specify "
                "retain_graph=True if you need to backward through the graph a second time."
            )
        return self._saved

    def free(self) -> None:
        self._saved = None
        for k in [k for k in vars(self) if not k.startswith("_") and k != "needs_input_grad"]:
            delattr(self, k)  # attributes a forward stashed on ctx go too


class Node:
    """One recorded op in the backward graph: the ``grad_fn`` of its outputs."""

    __slots__ = ("function", "ctx", "inputs", "outputs", "freed", "hooks", "retained", "trace",
                 "__weakref__")

    def __init__(self, function: type, ctx: Context, inputs: tuple, outputs: list):
        self.function = function
        self.ctx = ctx
        self.inputs = inputs  # the forward's positional args (Tensors and others)
        self.outputs = outputs  # (shape, dtype) of each output, for zero gradients
        self.freed = False
        self.hooks: dict[int, list] | None = None  # output index -> gradient hooks
        # output index -> weak reference to the output whose .grad is kept (retain_grad)
        self.retained: dict[int, Any] | None = None
        self.trace: str | None = None  # where the op was called (anomaly mode)

    def name(self) -> str:
        return self.function.__name__

    def __repr__(self) -> str:
        return f"<{self.name()}Backward>"

    def parents(self):
        """The input tensors that gradients flow into."""
        from .tensor import Tensor

        return [t for t in self.inputs if isinstance(t, Tensor) and t.requires_grad]


class Function:
    """Base class of every differentiable op, built-in or user-defined.

    Subclass with two static methods working on raw (NumPy/CuPy) arrays::

        class Mul(Function):
            @staticmethod
            def forward(ctx, x, y):
                ctx.save_for_backward(x, y)
                return x * y

            @staticmethod
            def backward(ctx, gz):
                x, y = ctx.saved_tensors
                return gz * y, gz * x

    and call ``Mul.apply(a, b)``. ``backward`` returns one gradient per positional
    input of ``forward`` (None where none is needed; a bare array for one input).
    Keyword arguments to ``apply`` are passed to ``forward`` and never differentiated.
    """

    @staticmethod
    def forward(ctx: Context, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    @staticmethod
    def backward(ctx: Context, *grad_outputs: Any) -> Any:
        raise NotImplementedError

    @classmethod
    def apply(cls, *args: Any, **kwargs: Any):
        from .tensor import Tensor

        tensors = [a for a in args if isinstance(a, Tensor)]
        device = _common_device(cls, tensors)
        needs = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        recording = is_grad_enabled() and any(needs)
        ctx = Context(needs, recording)
        raw = [a.data if isinstance(a, Tensor) else a for a in args]

        if observers:
            for obs in observers:
                obs.before_forward(cls, raw)
        out = cls.forward(ctx, *raw, **kwargs)
        if observers:
            for obs in observers:
                obs.after_forward(cls, raw, out)

        multiple = isinstance(out, tuple)
        outs = out if multiple else (out,)
        # NumPy turns 0-d results into scalars (np.float32); .data is always an array
        outs = tuple(np.asarray(o) if isinstance(o, np.generic) else o for o in outs)
        # only floating-point results carry gradients (an int or bool result, such as a
        # cast or an argmax, is a constant to autograd, as in PyTorch)
        differentiable = [o.dtype.kind in "fc" for o in outs]
        recording = recording and any(differentiable)
        node = Node(cls, ctx, args, [(o.shape, o.dtype) for o in outs]) if recording else None
        results = tuple(
            Tensor._make(o, device, grad_fn=node if d else None, output_index=i)
            for i, (o, d) in enumerate(zip(outs, differentiable))
        )
        if node is not None and observers:
            for obs in observers:
                obs.recorded(node)
        return results if multiple else results[0]


def _common_device(fn: type, tensors: list) -> backend.Device | None:
    if not tensors:
        return None
    device = tensors[0].device
    for t in tensors[1:]:
        if t.device != device:
            raise RuntimeError(
                f"{fn.__name__}: expected all tensors on the same device, "
                f"but found at least two devices, {device} and {t.device}"
            )
    return device


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


def topological_order(root: Node) -> list[Node]:
    """Nodes reachable from ``root``, each after every node it consumes.

    An iterative post-order depth-first search: the explicit stack replaces the
    recursion that would overflow on very deep graphs.
    """
    order: list[Node] = []
    visited = {root}
    stack = [(root, iter(root.inputs))]
    while stack:
        node, inputs = stack[-1]
        for t in inputs:
            child = getattr(t, "grad_fn", None)
            if child is not None and child not in visited:
                visited.add(child)
                stack.append((child, iter(child.inputs)))
                break
        else:  # every input done: the node can come after them
            stack.pop()
            order.append(node)
    return order


def backward(tensor, gradient: Any, retain_graph: bool = False) -> None:
    """Accumulate d(tensor)/d(leaf) · gradient into every leaf's ``.grad``."""
    from .tensor import Tensor

    root = tensor.grad_fn
    if root is None:  # backward of a leaf: its gradient is the seed itself
        tensor._accumulate(gradient)
        return
    order = topological_order(root)
    for node in order:
        if node.freed:
            node.ctx.saved_tensors  # raises the "second time" error  # noqa: B018
    # grads[node][i]: gradient w.r.t. output i of node, summed over its consumers
    grads: dict[Node, list] = {root: [None] * len(root.outputs)}
    grads[root][tensor._output_index] = gradient
    # id(leaf) -> [leaf, gradient summed over its uses]: a leaf's hooks see the total once
    leaf_grads: dict[int, list] = {}
    for node in reversed(order):
        out_grads = grads.pop(node, None)  # released as soon as it is consumed
        if out_grads is None:
            continue
        if node.hooks or node.retained:
            out_grads = _run_hooks(node, out_grads)
        in_grads = _call_backward(node, out_grads)
        if not retain_graph:
            node.ctx.free()
            node.freed = True
        for inp, g in zip(node.inputs, in_grads):
            if g is None or not isinstance(inp, Tensor) or not inp.requires_grad:
                continue
            g = unbroadcast(g, inp.shape)
            if g.dtype != inp.dtype:
                g = g.astype(inp.dtype)
            child = inp.grad_fn
            if child is None:
                entry = leaf_grads.setdefault(id(inp), [inp, None, False])
                if entry[1] is None:
                    entry[1], entry[2] = g, _is_fresh(g, in_grads, out_grads)
                else:
                    entry[1], entry[2] = entry[1] + g, True
                continue
            slots = grads.setdefault(child, [None] * len(child.outputs))
            i = inp._output_index
            slots[i] = g if slots[i] is None else slots[i] + g
    for leaf, g, owned in leaf_grads.values():
        leaf._accumulate(g, owned)


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
    if not isinstance(result, tuple):
        result = (result,)
    n = len(node.inputs)
    if len(result) > n and all(g is None for g in result[n:]):
        result = result[:n]  # extra Nones are harmless (an optional input not given)
    if len(result) > n:
        raise RuntimeError(
            f"{node.name()}.backward returned {len(result)} gradients, "
            f"but forward had {n} inputs"
        )
    return result + (None,) * (n - len(result))


def _run_hooks(node: Node, out_grads: list) -> list:
    """The gradient hooks of ``node``'s outputs, in registration order, then
    ``retain_grad``'s copy into ``.grad`` (last, as PyTorch: it keeps the final value)."""
    from .tensor import Tensor

    out_grads = list(out_grads)
    for i, hooks in (node.hooks or {}).items():
        if out_grads[i] is None:
            continue
        for hook in hooks:
            out_grads[i] = hook_result(hook, hook(Tensor(out_grads[i])), out_grads[i])
    for i, ref in (node.retained or {}).items():
        tensor = ref()
        if tensor is not None and out_grads[i] is not None:
            # a copy: the engine goes on using this array (it may even be a read-only view)
            g = out_grads[i]
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
