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
import weakref
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


class SavedTensor:
    """One value that ``save_for_backward`` kept (PyTorch's SavedVariable).

    ``array`` is what a raw-array backward reads. When the array is (a view of) an
    input or output of the op, ``counter``/``version`` remember that storage's version
    counter at save time, so a later in-place change is detected instead of silently
    giving a wrong gradient; ``tensor`` is that Tensor (an output only weakly: the
    output owns the node that owns this record), for a backward that builds a graph.
    """

    __slots__ = ("array", "counter", "version", "_tensor")

    def __init__(self, array: Any, tensor: Any = None, weak: bool = False):
        self.array = array
        self.counter = None if tensor is None else tensor._counter
        self.version = None if tensor is None else tensor._counter.value
        self._tensor = weakref.ref(tensor) if weak and tensor is not None else tensor

    @property
    def tensor(self):
        t = self._tensor
        return t() if isinstance(t, weakref.ref) else t

    def check(self, fn_name: str, index: int) -> None:
        if self.counter is not None and self.counter.value != self.version:
            a = self.array
            raise RuntimeError(
                f"one of the variables needed for gradient computation has been modified by "
                f"an inplace operation: saved tensor {index} of {fn_name} (shape "
                f"{tuple(a.shape)}, dtype {a.dtype}) is at version {self.counter.value}; "
                f"expected version {self.version} instead. Compute it out of place (or "
                f"clone it) before changing it in place."
            )


def storage_root(a: Any) -> Any:
    """The array that owns ``a``'s memory (NumPy and CuPy keep it in ``.base``)."""
    while getattr(a, "base", None) is not None:
        a = a.base
    return a


class Context:
    """What a Function's forward leaves for its backward."""

    def __init__(self, needs_input_grad: tuple[bool, ...], recording: bool):
        self.needs_input_grad = needs_input_grad
        self._recording = recording
        self._saved: tuple = ()
        self._records: tuple[SavedTensor, ...] | None = ()
        self._dirty: tuple = ()
        self._fn_name = "Function"

    def save_for_backward(self, *arrays: Any) -> None:
        # Nothing is kept when no input needs a gradient: no graph will use it.
        if self._recording:
            self._saved = arrays

    def mark_dirty(self, *arrays: Any) -> None:
        """Say that forward changed these input arrays in place (and returns them): the
        engine bumps their tensors' versions and makes those tensors the op's outputs."""
        self._dirty = arrays

    @property
    def saved_tensors(self) -> tuple:
        """The saved arrays, after checking that none was changed in place since."""
        records = self._records
        if records is None:
            raise RuntimeError(
                "Trying to backward through the graph a second time (or directly access "
                "saved tensors after they have already been freed). Saved intermediate "
                "values of the graph are freed when you call .backward(). Specify "
                "retain_graph=True if you need to backward through the graph a second time."
            )
        if not records:  # saved by a forward that ran outside apply (or nothing saved)
            return self._saved
        for i, r in enumerate(records):
            r.check(self._fn_name, i)
        return self._saved

    def _record_saved(self, inputs: list, outputs: list) -> None:
        """Turn the saved arrays into records, matching each to the input or output
        tensor whose storage it shares (cheap: identity of the memory's owner)."""
        if not self._saved:
            return
        # an input that mark_dirty made an output is held weakly, as outputs are
        owners = [(storage_root(t.data), t, False) for t in inputs
                  if not any(t is o for o in outputs)]
        owners += [(storage_root(t.data), t, True) for t in outputs]
        records = []
        for a in self._saved:
            root = storage_root(a)
            match = next(((t, weak) for r, t, weak in owners if r is root), (None, False))
            records.append(SavedTensor(a, *match))
        self._records = tuple(records)

    def free(self) -> None:
        self._saved = None
        self._records = None
        for k in [k for k in vars(self) if not k.startswith("_") and k != "needs_input_grad"]:
            delattr(self, k)  # attributes a forward stashed on ctx go too


class Node:
    """One recorded op in the backward graph: the ``grad_fn`` of its outputs."""

    __slots__ = ("function", "ctx", "inputs", "edges", "outputs", "freed", "hooks", "retained",
                 "trace", "__weakref__")

    def __init__(self, function: type, ctx: Context, inputs: tuple, outputs: list):
        from .tensor import Tensor

        self.function = function
        self.ctx = ctx
        self.inputs = inputs  # the forward's positional args (Tensors and others)
        # edges[i]: (grad_fn, output index) of input i *when the op ran*, None where no
        # gradient flows. Read from the tensor later, it could have changed: an in-place
        # op gives a tensor a new grad_fn, but this op consumed the old value.
        self.edges = tuple(
            (a.grad_fn, a._output_index) if need and isinstance(a, Tensor) else None
            for a, need in zip(inputs, ctx.needs_input_grad)
        )
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
        return [t for t, e in zip(self.inputs, self.edges) if e is not None]


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
        ctx._fn_name = cls.__name__
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
        _check_outputs(cls, outs)
        # only floating-point results carry gradients (an int or bool result, such as a
        # cast or an argmax, is a constant to autograd, as in PyTorch)
        differentiable = [o.dtype.kind in "fc" for o in outs]
        recording = recording and any(differentiable)
        node = Node(cls, ctx, args, [(o.shape, o.dtype) for o in outs]) if recording else None
        results = tuple(
            Tensor._make(o, device, grad_fn=node if d else None, output_index=i)
            for i, (o, d) in enumerate(zip(outs, differentiable))
        )
        _share_versions(tensors, results)
        if ctx._dirty:
            results = _take_dirty(cls, ctx, node, tensors, results)
        if node is not None:
            ctx._record_saved(tensors, results)
            if observers:
                for obs in observers:
                    obs.recorded(node)
        return results if multiple else results[0]


def _check_outputs(fn: type, outs: tuple) -> None:
    """forward must return raw arrays: a Tensor there is the PyTorch habit that nests
    tensors and fails much later, so it is refused at once with the rule."""
    from .tensor import Tensor

    for o in outs:
        if isinstance(o, Tensor):
            raise TypeError(
                f"{fn.__name__}.forward returned a Tensor; forward and backward work on raw "
                f"arrays (the .data of the inputs, NumPy or CuPy): return an array, e.g. "
                f"x * 2 on the array forward receives. To build a graph of existing ops, "
                f"call them outside a Function instead"
            )
        if not hasattr(o, "dtype") or not hasattr(o, "shape"):
            raise TypeError(f"{fn.__name__}.forward returned {type(o).__name__}; it must "
                            f"return an array (or a tuple of arrays)")


def _share_versions(inputs: list, results: tuple) -> None:
    """An output that is a view of an input (reshape, transpose, basic indexing ...)
    shares that input's storage, hence its version counter."""
    for r in results:
        root = storage_root(r.data)
        if root is r.data and not any(t.data is root for t in inputs):
            continue  # a fresh array: the common case, decided in two identity tests
        for t in inputs:
            if storage_root(t.data) is root:
                r._counter, r._is_view = t._counter, True
                break


def _take_dirty(fn: type, ctx: Context, node: Node | None, inputs: list, results: tuple):
    """``ctx.mark_dirty``: the marked inputs were changed in place and are returned, so
    the input Tensor objects themselves become the outputs (as in PyTorch)."""
    from .tensor import Tensor

    results = list(results)
    for arr in ctx._dirty:
        t = next((t for t in inputs if t.data is arr), None)
        if t is None:
            raise ValueError(f"{fn.__name__}: mark_dirty got an array that is not one of "
                             f"forward's inputs")
        t._check_inplace(fn.__name__)
        t._bump_version()
        for i, r in enumerate(results):
            if r.data is arr:
                if node is not None and r.grad_fn is node:
                    # the node keeps the old value's identity, not the tensor (no cycle)
                    node.inputs = tuple(Tensor._make(a.data, None, a.grad_fn, a._output_index)
                                        if a is t else a for a in node.inputs)
                    t.grad_fn, t._output_index, t._requires_grad = node, i, True
                results[i] = t
    return tuple(results)


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


def backward(tensor, gradient: Any, retain_graph: bool = False) -> None:
    """Accumulate d(tensor)/d(leaf) · gradient into every leaf's ``.grad``."""
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
        for inp, edge, g in zip(node.inputs, node.edges, in_grads):
            if g is None or edge is None:
                continue
            g = _fit(node, g, inp)
            child, i = edge
            if child is None:
                entry = leaf_grads.setdefault(id(inp), [inp, None, False])
                if entry[1] is None:
                    entry[1], entry[2] = g, _is_fresh(g, in_grads, out_grads)
                else:
                    entry[1], entry[2] = entry[1] + g, True
                continue
            slots = grads.setdefault(child, [None] * len(child.outputs))
            slots[i] = g if slots[i] is None else slots[i] + g
    for leaf, g, owned in leaf_grads.values():
        leaf._accumulate(g, owned)


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
