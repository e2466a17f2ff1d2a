"""``Function``, its context ``ctx`` and the graph ``Node`` an op leaves behind.

``MyOp.apply(x, y)`` unwraps the tensors to raw arrays, runs ``MyOp.forward`` and
wraps the result in a new Tensor. If any input requires grad, the result also
records *how it was made*: its ``grad_fn`` is a ``Node`` holding the Function, the
context ``ctx`` (what forward saved) and the inputs.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np

from .. import backend
from .grad_mode import is_grad_enabled

_Tensor: type | None = None  # tensorgrad.tensor.Tensor, which imports this module


def _tensor_type() -> type:
    """Tensor, imported on first use (a module-level import would be circular)."""
    global _Tensor
    if _Tensor is None:
        from ..tensor import Tensor

        _Tensor = Tensor
    return _Tensor

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

    __slots__ = ("array", "counter", "version", "_tensor", "output_index")

    def __init__(self, array: Any, tensor: Any = None, weak: bool = False):
        self.array = array
        self.counter = None if tensor is None else tensor._counter
        self.version = None if tensor is None else tensor._counter.value
        self._tensor = weakref.ref(tensor) if weak and tensor is not None else tensor
        self.output_index = tensor._output_index if weak and tensor is not None else None

    @property
    def tensor(self):
        t = self._tensor
        return t() if isinstance(t, weakref.ref) else t

    def traced(self, node: Node, fn_name: str):
        """This value as a traced array for a backward that records a graph: the Tensor
        it was saved from, so the new graph reaches back through it."""
        from ..tensor import Tensor
        from .traced import TracedArray

        t = self.tensor
        if t is None and self.output_index is not None:
            # the output itself is gone, but the node that made it is here
            t = Tensor._make(self.array, None, grad_fn=node, output_index=self.output_index)
            t._counter = self.counter
        if t is None:
            if self.array.dtype.kind in "fc":
                raise RuntimeError(
                    f"{fn_name} saved an intermediate float array that is neither an input "
                    f"nor an output, so create_graph cannot see how it depends on the "
                    f"inputs; its backward cannot be differentiated"
                )
            t = Tensor._make(self.array, None)  # masks and indices are constants
        return TracedArray(t)

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

    # defaults on the class: a context is made for every op, so it sets only two fields
    _saved: tuple | None = ()
    _records: tuple | None = ()  # one SavedTensor per saved array; None once freed
    _dirty: tuple = ()  # arrays forward changed in place (mark_dirty)
    _fn_name = "Function"
    _trace: Node | None = None  # the node, while its backward runs under create_graph

    def __init__(self, needs_input_grad: tuple[bool, ...], recording: bool):
        self.needs_input_grad = needs_input_grad
        self._recording = recording

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
        if self._trace is not None:  # a backward that records a graph (create_graph)
            return tuple(r.traced(self._trace, self._fn_name) for r in records)
        return self._saved

    def _record_saved(self, inputs: list, outputs: list) -> None:
        """Turn the saved arrays into records, matching each to the input or output
        tensor whose storage it shares (cheap: identity of the memory's owner)."""
        if not self._saved:
            return
        owners = None
        records = []
        for a in self._saved:
            # the common case first: the very array of an input (not one made an output
            # by mark_dirty, which is held weakly, as outputs are)
            t = next((t for t in inputs if t.data is a), None)
            if t is not None and not any(t is o for o in outputs):
                records.append(SavedTensor(a, t))
                continue
            if owners is None:  # else: which storage does it share, if any
                owners = [(storage_root(t.data), t, False) for t in inputs
                          if not any(t is o for o in outputs)]
                owners += [(storage_root(t.data), t, True) for t in outputs]
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
        self.function = function
        self.ctx = ctx
        self.inputs = inputs  # the forward's positional args (Tensors and others)
        # edges[i]: (grad_fn, output index) of input i *when the op ran*, None where no
        # gradient flows. Read from the tensor later, it could have changed: an in-place
        # op gives a tensor a new grad_fn, but this op consumed the old value.
        self.edges = tuple((a.grad_fn, a._output_index) if need else None
                           for a, need in zip(inputs, ctx.needs_input_grad))
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

    Higher-order gradients: set ``differentiable_backward = True`` when backward uses
    only operators, array methods and ``xp = tg.get_array_module(g)`` functions (no
    writes through views, nothing but saved inputs/outputs and constants): under
    ``create_graph=True`` the engine then runs it on traced arrays that record a graph
    (see ``tensorgrad/autograd/traced.py``). Otherwise ``create_graph`` reaching the op
    raises, and ``@once_differentiable`` on backward makes that error wait until a
    second derivative is actually taken through it (as PyTorch's).
    """

    differentiable_backward = False
    # A fused op may give instead ``composite(*inputs, **kwargs)``: its forward written
    # with differentiable tensor ops. create_graph then differentiates that (it is the
    # op's definition), so the fused backward stays array code.
    composite = None

    @staticmethod
    def forward(ctx: Context, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    @staticmethod
    def backward(ctx: Context, *grad_outputs: Any) -> Any:
        raise NotImplementedError

    @classmethod
    def apply(cls, *args: Any, **kwargs: Any):
        Tensor = _Tensor or _tensor_type()
        tensors = [a for a in args if isinstance(a, Tensor)]
        device = _common_device(cls, tensors)
        needs = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        recording = is_grad_enabled() and any(needs)
        ctx = Context(needs, recording)
        if recording:
            ctx._fn_name = cls.__name__
            if cls.composite is not None:
                ctx._kwargs = kwargs
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
        if any(isinstance(o, np.generic) for o in outs):
            outs = _scalars_as_arrays(ctx, outs)
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


def _scalars_as_arrays(ctx: Context, outs: tuple) -> tuple:
    """NumPy gives an op on 0-d arrays a scalar (np.float32), and ``.data`` is always an
    array: each scalar becomes one, also where forward saved it, so that the saved
    value is the output's own array (create_graph finds the output tensor through it)."""
    arrays = tuple(np.asarray(o) if isinstance(o, np.generic) else o for o in outs)
    if ctx._saved:
        swap = {id(o): a for o, a in zip(outs, arrays) if o is not a}
        ctx._saved = tuple(swap.get(id(v), v) for v in ctx._saved)
    return arrays


def _check_outputs(fn: type, outs: tuple) -> None:
    """forward must return raw arrays: a Tensor there is the PyTorch habit that nests
    tensors and fails much later, so it is refused at once with the rule."""
    for o in outs:
        if type(o) is np.ndarray:  # the common case, in one test
            continue
        if isinstance(o, _Tensor or _tensor_type()):
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
    from ..tensor import Tensor

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


def once_differentiable(backward):
    """Mark a raw-array ``backward`` as first-order only (PyTorch's decorator): under
    ``create_graph=True`` it still computes the gradient, but differentiating that
    gradient again raises an error naming the Function."""
    backward.once_differentiable = True
    return backward


class DelayedError(Function):
    """Stands for a gradient computed by a once-differentiable backward: the values
    pass through, and differentiating them raises."""

    @staticmethod
    def forward(ctx, *inputs, values, name):
        ctx.name = name
        return values

    @staticmethod
    def backward(ctx, *grads):
        raise RuntimeError(
            f"trying to differentiate twice a function that was marked with "
            f"@once_differentiable: {ctx.name}"
        )
