"""The Tensor: an array (NumPy or CuPy) plus what autograd needs to know about it.

A Tensor holds its values in ``.data`` and, when it was produced by an op that
is being recorded, the ``grad_fn`` node that made it. The arithmetic methods are
one-line wrappers over the Functions in ``tensorgrad/ops``.
"""

from __future__ import annotations

import numbers
import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import autograd, backend
from .backend import Device

float16 = np.dtype("float16")
float32 = np.dtype("float32")
float64 = np.dtype("float64")
int32 = np.dtype("int32")
int64 = np.dtype("int64")
bool_ = np.dtype("bool")

DEFAULT_FLOAT = float32


def _is_float(dtype) -> bool:
    return np.dtype(dtype).kind == "f"


def _normalize_dtype(dtype) -> np.dtype | None:
    if dtype is None:
        return None
    try:
        return np.dtype(dtype)
    except TypeError as e:
        raise TypeError(f"not a dtype: {dtype!r}") from e


class VersionCounter:
    """The version of one storage, shared by a tensor and every view of it."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0


class Tensor:
    """An n-dimensional array on the CPU or a GPU that can record gradients."""

    __array_ufunc__ = None  # NumPy defers to our reflected operators (np_array * t)
    __slots__ = ("data", "_grad", "_requires_grad", "grad_fn", "_output_index", "_hooks",
                 "_post_accumulate_hooks", "_counter", "_is_view", "__weakref__")

    def __init__(self, data: Any, requires_grad: bool = False):
        if isinstance(data, Tensor):
            data = data.data
        if not (isinstance(data, np.ndarray) or backend.is_cupy_array(data)):
            data = tensor(data).data  # Python data: the same dtype rules as tg.tensor
        self.data = data
        self._grad: Tensor | None = None
        self.grad_fn: autograd.Node | None = None
        self._output_index = 0
        self._hooks: list | None = None
        self._post_accumulate_hooks: list | None = None
        self._requires_grad = False
        self._counter = VersionCounter()
        self._is_view = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _make(cls, data, device, grad_fn=None, output_index=0) -> Tensor:
        """Wrap an op's result without any checks (the hot path of every op)."""
        t = cls.__new__(cls)
        t.data = data
        t._grad = None
        t.grad_fn = grad_fn
        t._output_index = output_index
        t._hooks = None
        t._post_accumulate_hooks = None
        t._requires_grad = grad_fn is not None
        t._counter = VersionCounter()
        t._is_view = False
        return t

    # -------------------------------------------------------------- versions
    @property
    def _version(self) -> int:
        """How many in-place changes this tensor's storage has seen (PyTorch's
        ``t._version``); views share their base's counter."""
        return self._counter.value

    def _bump_version(self) -> None:
        """Record an in-place change of the values. Every in-place write calls it (the
        in-place methods, optimizer steps, initialisers, running statistics ...), so a
        backward that saved the old values can tell that they are gone."""
        self._counter.value += 1

    # -------------------------------------------------------------- attributes
    @property
    def grad(self) -> Tensor | None:
        """The gradient accumulated by backward (a Tensor of this tensor's shape,
        dtype and device), or None."""
        return self._grad

    @grad.setter
    def grad(self, value: Tensor | None) -> None:
        # checked when assigned, as PyTorch, not later in an optimizer step
        if value is not None:
            check_grad(self, value, "assigned grad")
        self._grad = value

    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        self.requires_grad_(value)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if requires_grad and not _is_float(self.dtype):
            raise TypeError(
                f"only floating-point tensors can require gradients, got dtype {self.dtype}"
            )
        if not requires_grad and self.grad_fn is not None:
            raise RuntimeError(
                "you can only change requires_grad of leaf tensors; use .detach() instead"
            )
        self._requires_grad = bool(requires_grad)
        return self

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def device(self) -> Device:
        return backend.device_of(self.data)

    def size(self, dim: int | None = None):
        if dim is None:
            return self.shape
        if not -self.ndim <= dim < self.ndim:
            raise IndexError(f"size: dim {dim} is out of range for a tensor with "
                             f"{self.ndim} dimensions (shape {self.shape})")
        return self.shape[dim]

    def numel(self) -> int:
        return int(self.data.size)

    def dim(self) -> int:
        return self.ndim

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __hash__(self) -> int:  # identity, so tensors can key dicts and sets
        return id(self)

    # ---------------------------------------------------------- conversions
    def item(self):
        if self.data.size != 1:
            raise ValueError(
                f"item() needs a tensor with exactly one element, got shape {self.shape}"
            )
        if backend.is_cupy_array(self.data):
            backend.raise_deferred()  # a transfer: the checks kept on the GPU come first
        return self.data.reshape(()).item()

    def numpy(self) -> np.ndarray:
        """A host (NumPy) copy of the values."""
        return np.array(backend.to_numpy(self.data), copy=True)

    def __array__(self, dtype=None, copy=None):
        """``np.asarray(t)``: a CPU tensor's values, as PyTorch gives them (refused when
        it requires grad); a CUDA tensor refuses, as CuPy does: use ``.numpy()``."""
        if backend.is_cupy_array(self.data):
            raise TypeError(f"can't convert a tensor on {self.device} to a NumPy array "
                            f"implicitly; use .numpy() (a host copy) or .cpu() first")
        if self.requires_grad:
            raise RuntimeError("can't convert a tensor that requires grad to a NumPy array; "
                               "use tensor.detach().numpy() instead")
        return self.data.astype(dtype, copy=False) if dtype is not None else self.data

    def tolist(self):
        return backend.to_numpy(self.data).tolist()

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise ValueError(
                f"the truth value of a tensor with {self.data.size} elements is ambiguous"
            )
        return bool(self.item())

    def __repr__(self) -> str:
        body = np.array2string(backend.to_numpy(self.data), separator=", ", precision=4,
                               prefix="tensor(")
        extras = []
        if self.device != "cpu":
            extras.append(f"device='{self.device}'")
        if self.dtype != float32 and self.dtype != int64 or self.data.size == 0:
            extras.append(f"dtype={self.dtype}")
        if self.grad_fn is not None:
            extras.append(f"grad_fn={self.grad_fn!r}")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + ", ".join([body] + extras) + ")"

    def to(self, *args, device=None, dtype=None) -> Tensor:
        """``t.to("cuda")``, ``t.to(tg.float64)``, ``t.to(device=..., dtype=...)``."""
        for a in args:
            if isinstance(a, (str, Device)) and not _looks_like_dtype(a):
                device = a
            else:
                dtype = a
        device = self.device if device is None else backend.parse_device(device)
        dtype = self.dtype if dtype is None else _normalize_dtype(dtype)
        if device == self.device and dtype == self.dtype:
            return self
        from .ops.shape import ToCopy

        return ToCopy.apply(self, device=device, dtype=dtype)

    def cuda(self, device: int | None = None) -> Tensor:
        return self.to("cuda" if device is None else f"cuda:{device}")

    def cpu(self) -> Tensor:
        return self.to("cpu")

    def float(self) -> Tensor:
        return self.to(dtype=float32)

    def double(self) -> Tensor:
        return self.to(dtype=float64)

    def half(self) -> Tensor:
        return self.to(dtype=float16)

    def bool(self) -> Tensor:
        return self.to(dtype=bool_)

    def long(self) -> Tensor:
        return self.to(dtype=int64)

    def int(self) -> Tensor:
        return self.to(dtype=int32)

    def detach(self) -> Tensor:
        """The same values (shared memory, hence the same version counter), cut from
        the graph."""
        t = Tensor._make(self.data, None)
        t._counter = self._counter
        return t

    def clone(self) -> Tensor:
        from .ops.shape import Clone

        return Clone.apply(self)

    # -------------------------------------------------------------- autograd
    def backward(self, gradient: Any = None, retain_graph: bool | None = None,
                 create_graph: bool = False, inputs: Any = None) -> None:
        """Compute the gradient of this tensor w.r.t. every leaf that requires grad (or
        only w.r.t. ``inputs``), accumulating into their ``.grad``. ``create_graph``
        records the backward pass too, so the gradients can be differentiated again;
        ``retain_graph`` defaults to it. See ``tg.autograd.backward``."""
        from .autograd.api import backward

        backward([self], None if gradient is None else [gradient], retain_graph,
                 create_graph, inputs=inputs)

    def _accumulate(self, g, owned: bool = False) -> None:
        """Add gradient ``g`` (a raw array) into this leaf's ``.grad``. ``owned`` says
        that nothing else references ``g``, so ``.grad`` may keep it without a copy.
        Under create_graph ``g`` is a Tensor with a graph, and so is ``.grad``."""
        if isinstance(g, Tensor):
            for hook in self._hooks or ():
                new = hook(g)
                autograd.hook_result(hook, new, g.data)
                g = g if new is None else new
            self.grad = g if self.grad is None else self.grad + g
            self._run_post_accumulate_hooks()
            return
        if self._hooks:
            for hook in self._hooks:
                new = autograd.hook_result(hook, hook(Tensor._make(g, None)), g)
                owned = owned and new is g
                g = new
        if self.grad is None:
            # Otherwise a copy: the engine may hand the same array to several inputs
            # (x + x, broadcast views), and .grad must be safe to modify in place.
            self.grad = Tensor._make(g if owned else g.copy(), None)
        else:
            self.grad = Tensor._make(self.grad.data + g, None)
        self._run_post_accumulate_hooks()

    def _run_post_accumulate_hooks(self) -> None:
        for hook in self._post_accumulate_hooks or ():
            hook(self)

    def register_post_accumulate_grad_hook(self, hook):
        """Call ``hook(tensor)`` each time backward has accumulated this leaf's ``.grad``
        (PyTorch's: data-parallel training starts averaging a gradient there, while the
        rest of backward goes on). Returns a handle with ``.remove()``."""
        if self.grad_fn is not None:
            raise RuntimeError("post accumulate grad hooks cannot be registered on "
                               "non-leaf tensors")
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require grad")
        if self._post_accumulate_hooks is None:
            self._post_accumulate_hooks = []
        self._post_accumulate_hooks.append(hook)
        return _HookHandle(self._post_accumulate_hooks, hook)

    def register_hook(self, fn):
        """Call ``fn(grad)`` when this tensor's gradient is computed; a returned
        Tensor replaces the gradient. Returns a handle with ``.remove()``."""
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require grad")
        if self.grad_fn is None:
            if self._hooks is None:
                self._hooks = []
            hooks = self._hooks
        else:
            node = self.grad_fn
            if node.hooks is None:
                node.hooks = {}
            hooks = node.hooks.setdefault(self._output_index, [])
        hooks.append(fn)
        return _HookHandle(hooks, fn)

    def retain_grad(self) -> None:
        """Keep the gradient of this non-leaf tensor in ``.grad`` after backward (the
        value after its hooks have run). A leaf keeps its gradient anyway."""
        if not self.requires_grad:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        if self.grad_fn is None:
            return
        node = self.grad_fn
        if node.retained is None:
            node.retained = {}
        # weak: the node must not keep its own output alive
        node.retained[self._output_index] = weakref.ref(self)

    @property
    def retains_grad(self) -> bool:
        """Whether ``retain_grad()`` was called on this non-leaf tensor."""
        node = self.grad_fn
        return node is not None and node.retained is not None and \
            self._output_index in node.retained

    # ---------------------------------------------------------------- in-place
    # As PyTorch: an in-place op changes this tensor's values (every view sees it) and
    # bumps its version. Refused on a leaf that requires grad unless grad mode is off
    # (an optimizer step); recorded on any other tensor when a gradient could flow.
    def _check_inplace(self, op: str) -> None:
        if not autograd.is_grad_enabled():
            return
        if self.requires_grad and self.grad_fn is None:
            raise RuntimeError(
                f"{op}: a leaf tensor that requires grad (shape {self.shape}) is being used "
                f"in an in-place operation; change it under tg.no_grad() (as an optimizer "
                f"step does) or work on a clone"
            )
        if self._is_view and self.requires_grad:
            raise RuntimeError(
                f"{op}: in-place change of a view (shape {self.shape}) of a tensor that "
                f"requires grad is not supported; compute the new values out of place "
                f"(e.g. with tg.where or tg.cat) instead"
            )

    def _inplace(self, op: str, fn, *args) -> Tensor:
        """Run the out-of-place op ``fn(self, *args)`` and write its result into this
        tensor's storage; when recorded, this tensor takes the result's ``grad_fn``."""
        self._check_inplace(op)
        record = autograd.is_grad_enabled() and (
            self.requires_grad or any(isinstance(a, Tensor) and a.requires_grad for a in args))
        if not record:
            with autograd.no_grad():
                result = fn(self.detach(), *args)
            self._write(op, result.data)
            return self
        if self._is_view:
            raise RuntimeError(
                f"{op}: in-place change of a view (shape {self.shape}) with an operand that "
                f"requires grad is not supported; compute the result out of place instead"
            )
        # The op reads the old values from a copy: it may save them for its backward,
        # and they are about to be overwritten. The copy hangs where this tensor hung.
        old = Tensor._make(self.data, None, self.grad_fn, self._output_index)
        old._requires_grad, old._counter = self.requires_grad, self._counter
        result = fn(old.clone() if old.requires_grad else old.detach(), *args)
        self._write(op, result.data)
        self.grad_fn, self._output_index = result.grad_fn, result._output_index
        self._requires_grad = result.requires_grad
        return self

    def _write(self, op: str, values) -> None:
        if tuple(values.shape) != self.shape:
            raise RuntimeError(f"{op}: the result has shape {tuple(values.shape)}, which "
                               f"doesn't match this tensor's shape {self.shape}")
        if values.dtype != self.dtype and not np.can_cast(values.dtype, self.dtype,
                                                          "same_kind"):
            raise TypeError(f"{op}: result type {values.dtype} can't be cast to this "
                            f"tensor's dtype {self.dtype}")
        self.data[...] = values
        self._bump_version()

    def add_(self, other, *, alpha=1) -> Tensor:
        return self._inplace("add_", lambda s, o: s + o * alpha if alpha != 1 else s + o, other)

    def sub_(self, other, *, alpha=1) -> Tensor:
        return self._inplace("sub_", lambda s, o: s - o * alpha if alpha != 1 else s - o, other)

    def mul_(self, other) -> Tensor:
        return self._inplace("mul_", lambda s, o: s * o, other)

    def div_(self, other) -> Tensor:
        return self._inplace("div_", lambda s, o: s / o, other)

    def pow_(self, exponent) -> Tensor:
        return self._inplace("pow_", lambda s, e: s**e, exponent)

    def clamp_(self, min=None, max=None) -> Tensor:
        return self._inplace("clamp_", lambda s: s.clamp(min, max))

    clip_ = clamp_

    def abs_(self) -> Tensor:
        return self._inplace("abs_", lambda s: s.abs())

    def neg_(self) -> Tensor:
        return self._inplace("neg_", lambda s: -s)

    def exp_(self) -> Tensor:
        return self._inplace("exp_", lambda s: s.exp())

    def log_(self) -> Tensor:
        return self._inplace("log_", lambda s: s.log())

    def sqrt_(self) -> Tensor:
        return self._inplace("sqrt_", lambda s: s.sqrt())

    def relu_(self) -> Tensor:
        return self._inplace("relu_", lambda s: s.relu())

    def sigmoid_(self) -> Tensor:
        return self._inplace("sigmoid_", lambda s: s.sigmoid())

    def tanh_(self) -> Tensor:
        return self._inplace("tanh_", lambda s: s.tanh())

    def __iadd__(self, other):
        return self._inplace("+=", lambda s, o: s + o, other)

    def __isub__(self, other):
        return self._inplace("-=", lambda s, o: s - o, other)

    def __imul__(self, other):
        return self._inplace("*=", lambda s, o: s * o, other)

    def __itruediv__(self, other):
        return self._inplace("/=", lambda s, o: s / o, other)

    def fill_(self, value) -> Tensor:
        from .ops.shape import fill

        return self._inplace("fill_", fill, value)

    def zero_(self) -> Tensor:
        return self.fill_(0)

    def copy_(self, src) -> Tensor:
        """Copy ``src``'s values in (broadcast, cast to this dtype, from any device)."""
        from .ops.shape import fill

        if isinstance(src, Tensor) and src.device != self.device:
            src = src.to(self.device)
        elif not isinstance(src, Tensor):  # numbers, lists, arrays: made on this device
            src = tensor(src, dtype=self.dtype, device=self.device)
        return self._inplace("copy_", fill, src)

    # ---------------------------------------------------------- operators
    def __add__(self, other):
        return _ops().add(self, other)

    def __radd__(self, other):
        return _ops().add(other, self)

    def __sub__(self, other):
        return _ops().sub(self, other)

    def __rsub__(self, other):
        return _ops().sub(other, self)

    def __mul__(self, other):
        return _ops().mul(self, other)

    def __rmul__(self, other):
        return _ops().mul(other, self)

    def __truediv__(self, other):
        return _ops().div(self, other)

    def __rtruediv__(self, other):
        return _ops().div(other, self)

    def __pow__(self, other):
        return _ops().pow(self, other)

    def __rpow__(self, other):
        return _ops().pow(other, self)

    def __floordiv__(self, other):
        return _ops().floor_divide(self, other)

    def __rfloordiv__(self, other):
        return _ops().floor_divide(other, self)

    def __mod__(self, other):
        return _ops().remainder(self, other)

    def __rmod__(self, other):
        return _ops().remainder(other, self)

    def __matmul__(self, other):
        return _ops().matmul(self, other)

    def __rmatmul__(self, other):
        return _ops().matmul(other, self)

    def __neg__(self):
        return _ops().neg(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return self.abs()

    def __getitem__(self, index):
        return _ops().getitem(self, index)

    def __setitem__(self, index, value):
        from .ops.indexing import raw_index, setitem

        self._check_inplace("__setitem__")
        if autograd.is_grad_enabled() and (
                self.requires_grad or isinstance(value, Tensor) and value.requires_grad):
            self._inplace("__setitem__", lambda s, v: setitem(s, index, v), value)
            return
        # nothing to record: write straight into the storage (no copy of the rest)
        value = value.data if isinstance(value, Tensor) else value
        if isinstance(value, (list, tuple)):  # host data, as a NumPy array is
            value = tensor(value, dtype=self.dtype).data
        if hasattr(value, "shape"):
            value = backend.to_device(value, self.device)
        self.data[raw_index(index, backend.get_array_module(self.data))] = value
        self._bump_version()

    # comparisons: no gradient, bool results
    def _compare(self, other, op):
        other_data = other.data if isinstance(other, Tensor) else other
        return Tensor._make(op(self.data, other_data), None)

    def __eq__(self, other):
        return self._compare(other, lambda a, b: a == b)

    def __ne__(self, other):
        return self._compare(other, lambda a, b: a != b)

    def __lt__(self, other):
        return self._compare(other, lambda a, b: a < b)

    def __le__(self, other):
        return self._compare(other, lambda a, b: a <= b)

    def __gt__(self, other):
        return self._compare(other, lambda a, b: a > b)

    def __ge__(self, other):
        return self._compare(other, lambda a, b: a >= b)

    def __invert__(self):
        return Tensor._make(~self.data, None)

    def __and__(self, other):
        return self._compare(other, lambda a, b: a & b)

    def __or__(self, other):
        return self._compare(other, lambda a, b: a | b)

    # PyTorch's method spellings of the operators
    def add(self, other):
        return self + other

    def sub(self, other):
        return self - other

    def mul(self, other):
        return self * other

    def div(self, other):
        return self / other

    def pow(self, exponent):
        return self**exponent

    def matmul(self, other):
        return self @ other

    def neg(self):
        return -self

    def eq(self, other):
        return self == other

    def ne(self, other):
        return self != other

    def lt(self, other):
        return self < other

    def le(self, other):
        return self <= other

    def gt(self, other):
        return self > other

    def ge(self, other):
        return self >= other

    # ---------------------------------------------------------- math methods
    def exp(self):
        return _ops().exp(self)

    def log(self):
        return _ops().log(self)

    def sqrt(self):
        return _ops().sqrt(self)

    def abs(self):
        return _ops().abs(self)

    def tanh(self):
        return _ops().tanh(self)

    def sigmoid(self):
        return _ops().sigmoid(self)

    def relu(self):
        return _ops().relu(self)

    def clamp(self, min=None, max=None):
        return _ops().clamp(self, min, max)

    clip = clamp

    def sum(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        return _ops().sum(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def mean(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        return _ops().mean(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def var(self, dim=None, keepdim=False, unbiased=True, *, correction=None, axis=None,
            keepdims=None):
        return _ops().var(self, dim, keepdim, unbiased, correction=correction, axis=axis,
                          keepdims=keepdims)

    def std(self, dim=None, keepdim=False, unbiased=True, *, correction=None, axis=None,
            keepdims=None):
        return _ops().std(self, dim, keepdim, unbiased, correction=correction, axis=axis,
                          keepdims=keepdims)

    def max(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        return _ops().max(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def min(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        return _ops().min(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def argmax(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        return _ops().argmax(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def argmin(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        return _ops().argmin(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def softmax(self, dim=None, *, axis=None):
        return _ops().softmax(self, dim, axis=axis)

    def log_softmax(self, dim=None, *, axis=None):
        return _ops().log_softmax(self, dim, axis=axis)

    # ---------------------------------------------------------- shape methods
    def reshape(self, *shape):
        return _ops().reshape(self, *shape)

    view = reshape

    def transpose(self, dim0, dim1):
        return _ops().transpose(self, dim0, dim1)

    def permute(self, *dims):
        return _ops().permute(self, *dims)

    @property
    def T(self):
        # All axes reversed, as NumPy (PyTorch deprecates .T beyond 2-D but does the same)
        return _ops().permute(self, *reversed(range(self.ndim)))

    def t(self):
        """The transpose of a tensor of at most 2 dimensions."""
        if self.ndim > 2:
            raise ValueError(f"t() expects a tensor with <= 2 dimensions, got shape {self.shape}")
        return self.T

    def view_as(self, other: Tensor):
        return self.reshape(other.shape)

    reshape_as = view_as

    def expand_as(self, other: Tensor):
        return self.expand(other.shape)

    def contiguous(self) -> Tensor:
        return self  # every op here works on any memory layout

    def flatten(self, start_dim=0, end_dim=-1):
        return _ops().flatten(self, start_dim, end_dim)

    def squeeze(self, dim=None, *, axis=None):
        return _ops().squeeze(self, dim, axis=axis)

    def unsqueeze(self, dim=None, *, axis=None):
        return _ops().unsqueeze(self, dim, axis=axis)

    def expand(self, *sizes):
        return _ops().expand(self, *sizes)

    # ------------------------------------------------------------------------------
    # The everyday PyTorch surface: more reductions, selection (gather/scatter/sort/
    # topk/masked_fill), rearrangement (repeat/flip/split/chunk) and new_* creation.
    # One-line wrappers over tensorgrad/ops/{reduce,select,rearrange}.py.
    def amax(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        return _ops().amax(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def amin(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        return _ops().amin(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def all(self, dim=None, keepdim=False):
        return _ops().all(self, dim, keepdim)

    def any(self, dim=None, keepdim=False):
        return _ops().any(self, dim, keepdim)

    def norm(self, p="fro", dim=None, keepdim=False):
        from .ops.reduce import norm  # (ops.norm is the module of the normalization layers)

        return norm(self, p, dim, keepdim)

    def square(self):
        return _ops().pow(self, 2)

    def logsumexp(self, dim, keepdim=False):
        return _ops().logsumexp(self, dim, keepdim)

    def cumsum(self, dim=None, *, dtype=None, axis=None):
        return _ops().cumsum(self, dim, dtype=dtype, axis=axis)

    def gather(self, dim, index):
        return _ops().gather(self, dim, index)

    def scatter(self, dim, index, src=None, *, value=None):
        return _ops().scatter(self, dim, index, src, value=value)

    def scatter_add(self, dim, index, src):
        return _ops().scatter_add(self, dim, index, src)

    def masked_fill(self, mask, value):
        return _ops().masked_fill(self, mask, value)

    def sort(self, dim=-1, descending=False, stable=False):
        return _ops().sort(self, dim, descending, stable)

    def argsort(self, dim=-1, descending=False, stable=False):
        return _ops().argsort(self, dim, descending, stable)

    def topk(self, k, dim=-1, largest=True, sorted=True):  # noqa: A002 - torch's name
        return _ops().topk(self, k, dim, largest, sorted)

    def repeat(self, *sizes):
        return _ops().repeat(self, *sizes)

    def flip(self, *dims):
        return _ops().flip(self, *dims)

    def split(self, split_size, dim=0):
        return _ops().split(self, split_size, dim)

    def chunk(self, chunks, dim=0):
        return _ops().chunk(self, chunks, dim)

    def _new(self, make, size, dtype, device, requires_grad):
        return make(*size, dtype=self.dtype if dtype is None else dtype,
                    device=self.device if device is None else device,
                    requires_grad=requires_grad)

    def new_zeros(self, *size, dtype=None, device=None, requires_grad=False):
        """Zeros of ``size`` with this tensor's dtype and device unless given."""
        return self._new(zeros, size, dtype, device, requires_grad)

    def new_ones(self, *size, dtype=None, device=None, requires_grad=False):
        return self._new(ones, size, dtype, device, requires_grad)

    def new_empty(self, *size, dtype=None, device=None, requires_grad=False):
        return self._new(empty, size, dtype, device, requires_grad)

    def new_full(self, size, fill_value, *, dtype=None, device=None, requires_grad=False):
        return full(size, fill_value, dtype=self.dtype if dtype is None else dtype,
                    device=self.device if device is None else device,
                    requires_grad=requires_grad)

    def new_tensor(self, data, dtype=None, device=None, requires_grad=False):
        """A new tensor (a copy) of ``data``, with this tensor's dtype and device unless
        given (as PyTorch's: ``x.new_tensor([1, 2])`` on float64 ``x`` is float64)."""
        return tensor(data, dtype=self.dtype if dtype is None else dtype,
                      device=self.device if device is None else device,
                      requires_grad=requires_grad)

    def type(self, dtype=None):
        """Without ``dtype``, the type name: ``'tensorgrad.FloatTensor'`` (float32 on the
        CPU), ``'tensorgrad.cuda.LongTensor'`` (int64 on a GPU) ..., as PyTorch's
        ``'torch.FloatTensor'``. With a dtype (or such a name, ``torch.`` accepted too):
        this tensor cast to it (itself when it already is)."""
        if dtype is None:
            cuda = ".cuda" if self.device.type == "cuda" else ""
            return f"tensorgrad{cuda}.{_TYPE_NAMES.get(self.dtype, str(self.dtype))}"
        if isinstance(dtype, str) and dtype.endswith("Tensor"):
            prefix, _, name = dtype.rpartition(".")
            by_name = {v: k for k, v in _TYPE_NAMES.items()}
            if prefix not in ("tensorgrad", "torch", "tensorgrad.cuda", "torch.cuda") or \
                    name not in by_name:
                raise ValueError(f"type: unknown tensor type {dtype!r}; expected e.g. "
                                 f"'tensorgrad.FloatTensor' or a dtype")
            device = "cuda" if prefix.endswith(".cuda") else "cpu"
            if device == "cuda" and self.device.type == "cuda":
                device = self.device
            return self.to(device=device, dtype=by_name[name])
        return self.to(dtype=_normalize_dtype(dtype))


def check_grad(t: Tensor, grad: Any, what: str) -> None:
    """Raise unless ``grad`` can be ``t``'s gradient: a Tensor of its shape, dtype and
    device (``what`` names it in the message)."""
    if not isinstance(grad, Tensor):
        raise TypeError(f"{what} must be a Tensor or None, got {type(grad).__name__}")
    if grad.shape != t.shape:
        raise ValueError(f"{what} has shape {grad.shape}, but the tensor has shape {t.shape}")
    if grad.dtype != t.dtype:
        raise TypeError(f"{what} has dtype {grad.dtype}, but the tensor has dtype {t.dtype}")
    if grad.device != t.device:
        raise RuntimeError(f"{what} is on {grad.device}, but the tensor is on {t.device}")


class _HookHandle:
    def __init__(self, hooks: list, fn):
        self._hooks, self._fn = hooks, fn

    def remove(self) -> None:
        if self._fn in self._hooks:
            self._hooks.remove(self._fn)


def _ops():
    from . import ops

    return ops


def _looks_like_dtype(name) -> bool:
    if isinstance(name, Device):
        return False
    try:
        np.dtype(name)
        return True
    except TypeError:
        return False


# ------------------------------------------------------------------ creation


def _infer_dtype(data) -> np.dtype | None:
    """PyTorch's rule: Python floats (and lists of them) become float32."""
    if isinstance(data, np.generic):  # a NumPy scalar keeps its dtype, as an array does
        return data.dtype
    if isinstance(data, bool):
        return bool_
    if isinstance(data, numbers.Integral):
        return int64
    if isinstance(data, numbers.Real):
        return DEFAULT_FLOAT
    return None


def tensor(data: Any, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A new tensor (a copy) from a Python number, a nested list, an array or a Tensor."""
    dtype = _normalize_dtype(dtype)
    if isinstance(data, Tensor):
        data = data.data
    if isinstance(data, np.ndarray) or backend.is_cupy_array(data):
        arr = data.astype(dtype or data.dtype, copy=True)
        target = backend.device_of(arr) if device is None else backend.parse_device(device)
        arr = backend.to_device(arr, target)
    else:
        if isinstance(data, (list, tuple)):
            data = _unwrap_nested(data)
        try:
            arr = np.array(data)
        except ValueError as e:  # NumPy's "inhomogeneous shape" for ragged lists
            raise ValueError(f"tensor: nested sequences of unequal lengths cannot make a "
                             f"tensor ({e})") from None
        if dtype is None:
            dtype = _infer_dtype(data)
            if dtype is None:  # a list: floats -> float32, ints -> int64
                if arr.dtype.kind == "f":
                    dtype = DEFAULT_FLOAT
                elif arr.dtype.kind in "iu":
                    dtype = int64
                elif arr.dtype.kind == "b":
                    dtype = bool_
                else:
                    raise TypeError(f"cannot make a tensor from data of dtype {arr.dtype}")
        arr = arr.astype(dtype, copy=False)
        arr = backend.to_device(arr, backend.parse_device(device))
    return Tensor(arr, requires_grad=requires_grad)


def _unwrap_nested(data):
    if isinstance(data, Tensor):
        return backend.to_numpy(data.data)
    if isinstance(data, (list, tuple)):
        return [_unwrap_nested(d) for d in data]
    return data


def from_numpy(a: np.ndarray) -> Tensor:
    """A tensor sharing memory with NumPy array ``a``."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"from_numpy expects a numpy.ndarray, got {type(a).__name__}")
    return Tensor(a)


def int_args(args: tuple, what: str = "sizes") -> tuple[int, ...]:
    """PyTorch's two spellings, ``f(2, 3)`` and ``f((2, 3))``, as one tuple of ints."""
    if len(args) == 1 and isinstance(args[0], Sequence):
        args = tuple(args[0])
    for s in args:
        if not isinstance(s, (int, np.integer)) or isinstance(s, bool):
            raise TypeError(f"{what} must be ints, got {args}")
    return tuple(int(s) for s in args)


def _size(size) -> tuple[int, ...]:
    size = int_args(size)
    if any(s < 0 for s in size):
        raise ValueError(f"sizes must be non-negative, got {size}")
    return size


def _creation(fill, size, dtype, device, requires_grad) -> Tensor:
    dtype = _normalize_dtype(dtype) or DEFAULT_FLOAT
    device = backend.parse_device(device)
    xp = backend.module_for(device)
    if xp is np:
        arr = fill(np, size, dtype)
    else:
        with xp.cuda.Device(device.index):
            arr = fill(xp, size, dtype)
    return Tensor(arr, requires_grad=requires_grad)


def zeros(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _creation(lambda xp, s, d: xp.zeros(s, d), _size(size), dtype, device, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _creation(lambda xp, s, d: xp.ones(s, d), _size(size), dtype, device, requires_grad)


def empty(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _creation(lambda xp, s, d: xp.empty(s, d), _size(size), dtype, device, requires_grad)


def full(size, fill_value=None, dtype=None, device=None, requires_grad=False, *,
         value=None) -> Tensor:
    """A tensor of ``size`` filled with ``fill_value`` (PyTorch's name; ``value`` is
    accepted too)."""
    if value is not None:
        if fill_value is not None:
            raise TypeError("full: got both fill_value and its alias value")
        fill_value = value
    if fill_value is None:
        raise TypeError("full: missing the fill value (fill_value=...)")
    if isinstance(fill_value, np.generic):  # a NumPy scalar fills like the number it holds
        fill_value = fill_value.item()
    if dtype is None:
        dtype = _infer_dtype(fill_value)
    size = _size((size,) if isinstance(size, Sequence) else (size,))
    return _creation(lambda xp, s, d: xp.full(s, fill_value, d), size, dtype, device,
                     requires_grad)


def _random(kind, size, dtype, device, requires_grad) -> Tensor:
    dtype = _normalize_dtype(dtype) or DEFAULT_FLOAT
    if not _is_float(dtype):
        raise TypeError(f"{kind}: random floats need a floating dtype, got {dtype}")
    dev = backend.parse_device(device)
    gen = backend.generator(dev)
    # Generators draw float32/float64 only; float16 is drawn in float32 and cast.
    draw = dtype if dtype in (float32, float64) else float32
    if kind == "randn":
        arr = gen.standard_normal(size, dtype=draw)
    else:
        arr = gen.random(size, dtype=draw)
    return Tensor(arr.astype(dtype, copy=False), requires_grad=requires_grad)


def randn(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Standard normal samples (from the generator that tg.manual_seed seeds)."""
    return _random("randn", _size(size), dtype, device, requires_grad)


def rand(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Uniform samples in [0, 1)."""
    return _random("rand", _size(size), dtype, device, requires_grad)


def arange(start=None, end=None, step=1, dtype=None, device=None,
           requires_grad=False) -> Tensor:
    """start, start + step, ... up to (not including) end; ``arange(n)`` and
    ``arange(end=n)`` count from 0."""
    if end is None:
        start, end = 0, start
    elif start is None:
        start = 0
    if end is None:
        raise TypeError("arange: missing the end of the range")
    if step == 0:
        raise ValueError("arange: step must be nonzero")
    if (end - start) * step < 0:
        raise ValueError(f"arange: the step {step} cannot go from {start} to {end}")
    if dtype is None:
        is_int = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
        dtype = int64 if is_int else DEFAULT_FLOAT
    dev = backend.parse_device(device)
    arr = backend.module_for(dev).arange(start, end, step, dtype=_normalize_dtype(dtype))
    return Tensor(arr, requires_grad=requires_grad)


def zeros_like(t: Tensor, dtype=None, device=None, requires_grad=False) -> Tensor:
    return zeros(t.shape, dtype=dtype or t.dtype, device=device or t.device,
                 requires_grad=requires_grad)


def ones_like(t: Tensor, dtype=None, device=None, requires_grad=False) -> Tensor:
    return ones(t.shape, dtype=dtype or t.dtype, device=device or t.device,
                requires_grad=requires_grad)


def randn_like(t: Tensor, dtype=None, device=None, requires_grad=False) -> Tensor:
    return randn(t.shape, dtype=dtype or t.dtype, device=device or t.device,
                 requires_grad=requires_grad)


# ------------------------------------------------- more creation (PyTorch's names)

_TYPE_NAMES = {  # dtype -> the name in PyTorch's legacy type strings (Tensor.type)
    float32: "FloatTensor", float64: "DoubleTensor", float16: "HalfTensor",
    int64: "LongTensor", int32: "IntTensor", np.dtype("int16"): "ShortTensor",
    np.dtype("int8"): "CharTensor", np.dtype("uint8"): "ByteTensor", bool_: "BoolTensor",
}


def rand_like(t: Tensor, dtype=None, device=None, requires_grad=False) -> Tensor:
    return rand(t.shape, dtype=dtype or t.dtype, device=device or t.device,
                requires_grad=requires_grad)


def full_like(t: Tensor, fill_value, dtype=None, device=None, requires_grad=False) -> Tensor:
    return full(t.shape, fill_value, dtype=dtype or t.dtype, device=device or t.device,
                requires_grad=requires_grad)


def eye(n: int, m: int | None = None, *, dtype=None, device=None,
        requires_grad=False) -> Tensor:
    """The n×m identity matrix (ones on the diagonal); m defaults to n."""
    size = _size((n, n if m is None else m))
    return _creation(lambda xp, s, d: xp.eye(s[0], s[1], dtype=d), size, dtype, device,
                     requires_grad)


def linspace(start, end, steps: int, *, dtype=None, device=None,
             requires_grad=False) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end``, both included."""
    (steps,) = int_args((steps,), "steps")
    if steps < 0:
        raise ValueError(f"linspace: steps must be non-negative, got {steps}")
    return _creation(lambda xp, s, d: xp.linspace(start, end, steps, dtype=d), (steps,),
                     dtype, device, requires_grad)


def randint(low, high=None, size=None, *, dtype=None, device=None,
            requires_grad=False) -> Tensor:
    """Uniform integers in [low, high): ``randint(high, size)`` or
    ``randint(low, high, size)``, int64 unless ``dtype`` says otherwise."""
    if size is None and isinstance(high, Sequence):  # randint(high, size)
        low, high, size = 0, low, high
    elif high is None:  # randint(high, size=...)
        low, high = 0, low
    if size is None:
        raise TypeError("randint: missing the size, e.g. randint(10, (3,))")
    (low, high) = int_args((low, high), "randint bounds")
    if high <= low:
        raise ValueError(f"randint: low ({low}) must be smaller than high ({high})")
    size = _size(size if isinstance(size, Sequence) else (size,))
    dtype = _normalize_dtype(dtype) or int64
    gen = backend.generator(backend.parse_device(device))
    arr = gen.integers(low, high, size=size, dtype=np.int64)
    return Tensor(arr.astype(dtype, copy=False), requires_grad=requires_grad)


def randperm(n: int, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A random permutation of 0..n-1 (int64 unless ``dtype`` says otherwise)."""
    (n,) = int_args((n,), "n")
    if n < 0:
        raise ValueError(f"randperm: n must be non-negative, got {n}")
    dev = backend.parse_device(device)
    # the order of n uniform draws is a uniform permutation (NumPy's and CuPy's
    # generators share random(), not permutation())
    keys = backend.generator(dev).random((n,), dtype=float64)
    perm = backend.get_array_module(keys).argsort(keys)
    return Tensor(perm.astype(_normalize_dtype(dtype) or int64), requires_grad=requires_grad)


def is_tensor(obj: Any) -> bool:
    return isinstance(obj, Tensor)


def numel(t: Tensor) -> int:
    return t.numel()
