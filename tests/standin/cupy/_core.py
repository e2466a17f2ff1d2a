"""The stand-in's array, its ufuncs and the argument rules (see the package docstring).

Every function wraps its NumPy namesake: device arrays are unwrapped to the NumPy array
they hold, host arrays are refused as CuPy refuses them, and results are wrapped back
(a NumPy scalar result becomes a 0-d device array, as CuPy's reductions return).
"""

from __future__ import annotations

import inspect
import threading
import weakref

import numpy as np

from . import _standin

_SCALARS = (bool, int, float, complex, np.generic)


def _refuse(x, where: str):
    raise TypeError(
        f"Unsupported type {type(x)} in {where}: CuPy never moves host data to the device "
        f"implicitly (the stand-in refuses it as CuPy does); use cupy.asarray first")


def _unwrap(x, where: str):
    """Device arrays -> the NumPy arrays they hold, recursively in lists and tuples;
    a host (NumPy) array anywhere is refused."""
    t = type(x)
    if t is ndarray:
        return x._a
    if t is np.ndarray:
        _refuse(x, where)
    if t is list or t is tuple:
        return t(_unwrap(v, where) for v in x)
    return x


def _unwrap_kw(kw: dict, where: str) -> dict:
    return {k: _unwrap(v, where) for k, v in kw.items()} if kw else kw


def _wrap(x):
    """NumPy results -> device arrays; NumPy scalars (reductions) -> 0-d device arrays."""
    t = type(x)
    if t is np.ndarray:
        return ndarray._of(x)
    if isinstance(x, np.generic) or t in (bool, int, float, complex):
        return ndarray._of(np.asarray(x))
    if t is tuple or t is list:
        return t(_wrap(v) for v in x)
    return x


# ------------------------------------------------------------------ device memory
# A pool in name only: every device array's root buffer counts while it lives, rounded
# up to CuPy's 512-byte blocks, and memory hooks see each allocation and release.

_live: dict[int, int] = {}
_hooks: list = []
_used = [0]


def _release(key: int, size: int) -> None:
    _live.pop(key, None)
    _used[0] -= size
    for h in list(_hooks):
        h.free_preprocess(device_id=0, mem_size=size, mem_ptr=key, pmem_id=key)
        h.free_postprocess(device_id=0, mem_size=size, mem_ptr=key, pmem_id=key)


def _track(a: np.ndarray) -> None:
    root = a
    while isinstance(root.base, np.ndarray):
        root = root.base
    key = id(root)
    if key in _live:
        return
    size = -(-root.nbytes // 512) * 512
    _live[key] = size
    _used[0] += size
    for h in list(_hooks):
        h.malloc_preprocess(device_id=0, size=root.nbytes, mem_size=size)
        h.malloc_postprocess(device_id=0, size=root.nbytes, mem_size=size, mem_ptr=key,
                             pmem_id=key)
    weakref.finalize(root, _release, key, size)


class MemoryPool:
    """``cupy.get_default_memory_pool()``: what device arrays hold now."""

    def used_bytes(self) -> int:
        return _used[0]

    def total_bytes(self) -> int:
        return _used[0]  # nothing is cached: freed blocks go straight back

    def free_bytes(self) -> int:
        return 0

    def n_free_blocks(self) -> int:
        return 0

    def free_all_blocks(self, stream=None) -> None:
        pass

    def set_limit(self, size=None, fraction=None) -> None:
        pass

    def get_limit(self) -> int:
        return 0


class MemoryHook:
    """``cupy.cuda.MemoryHook``: ``with hook:`` calls its ``*_preprocess`` and
    ``*_postprocess`` methods on each allocation and release (here for every thread)."""

    name = "MemoryHook"

    def __enter__(self):
        _hooks.append(self)
        return self

    def __exit__(self, *exc):
        if self in _hooks:
            _hooks.remove(self)

    def alloc_preprocess(self, **kw):
        pass

    def alloc_postprocess(self, **kw):
        pass

    def malloc_preprocess(self, **kw):
        pass

    def malloc_postprocess(self, **kw):
        pass

    def free_preprocess(self, **kw):
        pass

    def free_postprocess(self, **kw):
        pass


# ------------------------------------------------------------------------ devices


class CUDARuntimeError(RuntimeError):
    pass


_current = threading.local()


def _current_device() -> int:
    return getattr(_current, "id", 0)


class Device:
    """``cupy.cuda.Device(i)``: one device (id 0); a context that makes it current."""

    def __init__(self, device=None):
        self.id = _current_device() if device is None else int(device)
        self._before: list[int] = []

    def _check(self) -> None:
        if not 0 <= self.id < 1:
            raise CUDARuntimeError("cudaErrorInvalidDevice: invalid device ordinal")

    def use(self) -> None:
        self._check()
        _current.id = self.id

    def __enter__(self):
        self._check()
        self._before.append(_current_device())
        _current.id = self.id
        return self

    def __exit__(self, *exc):
        _current.id = self._before.pop()

    def synchronize(self) -> None:
        self._check()

    @property
    def compute_capability(self) -> str:
        return "90"

    @property
    def mem_info(self) -> tuple[int, int]:
        total = 80 << 30
        return total - _used[0], total

    def __eq__(self, other):
        return isinstance(other, Device) and other.id == self.id

    def __hash__(self):
        return hash(("Device", self.id))

    def __repr__(self) -> str:
        return f"<CUDA Device {self.id}>"


class MemoryPointer:
    """``a.data``: where an array's values start (``ptr``) on which device."""

    def __init__(self, a: np.ndarray):
        self.ptr = a.__array_interface__["data"][0]
        self.device_id = 0

    def __int__(self) -> int:
        return self.ptr


# ------------------------------------------------------------------------- arrays


def _host_index(key, where: str):
    """An index: device arrays unwrapped; NumPy index arrays and lists are moved to the
    device, as CuPy does (a counted transfer); anything else is NumPy's business."""
    t = type(key)
    if t is tuple:
        return tuple(_host_index(k, where) for k in key)
    if t is ndarray:
        return key._a
    if t is np.ndarray or t is list:
        a = np.asarray(key)
        _standin.count("host_to_device", a.nbytes, f"{where} with a host index array")
        return a
    return key


_wrappers: dict[int, weakref.ref] = {}  # id(NumPy array) -> its wrapper


def _forget(key: int) -> None:
    ref = _wrappers.get(key)
    if ref is not None and ref() is None:
        del _wrappers[key]


def _binary(name: str, reflected: bool = False):
    def op(self, other):
        # NEP 13, as CuPy: an operand that opts out of ufuncs (a tensorgrad Tensor)
        # gets its reflected operator
        if getattr(type(other), "__array_ufunc__", 0) is None:
            return NotImplemented
        f = _UFUNCS[name]
        return f(other, self) if reflected else f(self, other)

    return op


def _inplace(name: str):
    def op(self, other):
        _UFUNCS[name](self, other, out=self)
        return self

    return op


class ndarray:  # noqa: N801 - CuPy's name
    """A device array: a NumPy array the rest of the program may not touch directly."""

    __slots__ = ("_a", "__weakref__")
    __array_priority__ = 100

    def __init__(self, shape, dtype=float, memptr=None, strides=None, order="C"):
        self._a = np.empty(shape, dtype, order=order)
        _track(self._a)

    @classmethod
    def _of(cls, a: np.ndarray) -> ndarray:
        """Wrap a NumPy array (the stand-in's own results) without a copy. One wrapper per
        NumPy array, so identities hold as in CuPy (``a.base is b``, and functions that
        return their argument unchanged return the same object)."""
        ref = _wrappers.get(id(a))
        out = ref() if ref is not None else None
        if out is not None and out._a is a:
            return out
        out = object.__new__(cls)
        out._a = a
        key = id(a)
        _wrappers[key] = weakref.ref(out, lambda _, key=key: _forget(key))
        _track(a)
        return out

    # ----------------------------------------------- what makes it not a NumPy array
    def __array__(self, dtype=None, copy=None):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. Please use "
                        "`.get()` to construct a NumPy array explicitly.")

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        f = _UFUNCS.get(ufunc.__name__)
        if f is None:
            return NotImplemented
        return getattr(f, method)(*inputs, **kwargs)

    def __array_function__(self, func, types, args, kwargs):
        from . import _namespace

        f = _namespace(func.__module__).get(func.__name__)
        if f is None or any(t not in (ndarray, np.ndarray) for t in types):
            return NotImplemented
        return f(*args, **kwargs)

    # -------------------------------------------------------- explicit transfers
    def get(self, stream=None, order="C", out=None, blocking=True) -> np.ndarray:
        _standin.count("device_to_host", self._a.nbytes, "ndarray.get")
        host = np.array(self._a, order=order, copy=True)
        if out is not None:
            out[...] = host
            return out
        return host

    def set(self, arr, stream=None) -> None:
        if not isinstance(arr, np.ndarray):
            raise TypeError(f"Only numpy.ndarray can be set to cupy.ndarray, got {type(arr)}")
        _standin.count("host_to_device", arr.nbytes, "ndarray.set")
        self._a[...] = arr

    def item(self, *args):
        _standin.count("device_to_host", self._a.itemsize, "ndarray.item")
        return self._a.item(*args)

    def tolist(self):
        _standin.count("device_to_host", self._a.nbytes, "ndarray.tolist")
        return self._a.tolist()

    def _scalar(self, kind):
        _standin.count("device_to_host", self._a.itemsize, f"ndarray.__{kind.__name__}__")
        return kind(self._a)

    def __float__(self):
        return self._scalar(float)

    def __int__(self):
        return self._scalar(int)

    def __complex__(self):
        return self._scalar(complex)

    def __bool__(self):
        return self._scalar(bool)

    def __repr__(self) -> str:
        _standin.count("device_to_host", self._a.nbytes, "ndarray.__repr__")
        return repr(self._a)

    def __str__(self) -> str:
        _standin.count("device_to_host", self._a.nbytes, "ndarray.__str__")
        return str(self._a)

    def __format__(self, spec: str) -> str:
        _standin.count("device_to_host", self._a.nbytes, "ndarray.__format__")
        return format(self._a.item() if self._a.ndim == 0 else self._a, spec)

    def __reduce__(self):  # pickling goes through the host, as CuPy's does
        from . import array

        return array, (self.get(),)

    # --------------------------------------------------------------- attributes
    @property
    def device(self) -> Device:
        return Device(0)

    @property
    def data(self) -> MemoryPointer:
        return MemoryPointer(self._a)

    @property
    def base(self):
        base = self._a.base
        return ndarray._of(base) if isinstance(base, np.ndarray) else None

    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    nbytes = property(lambda self: self._a.nbytes)
    itemsize = property(lambda self: self._a.itemsize)
    strides = property(lambda self: self._a.strides)
    flags = property(lambda self: self._a.flags)
    T = property(lambda self: ndarray._of(self._a.T))
    mT = property(lambda self: ndarray._of(self._a.mT))
    real = property(lambda self: ndarray._of(self._a.real))
    imag = property(lambda self: ndarray._of(self._a.imag))

    def fill(self, value) -> None:
        if isinstance(value, np.ndarray):
            if value.shape != ():
                raise ValueError("non-scalar numpy.ndarray cannot be used for fill")
            value = value.item()
        self._a.fill(_unwrap(value, "ndarray.fill"))

    # ----------------------------------------------------------------- indexing
    def __getitem__(self, key):
        return _wrap(self._a[_host_index(key, "ndarray.__getitem__")])

    def __setitem__(self, key, value):
        if type(value) is np.ndarray:
            if value.shape != ():
                raise ValueError("non-scalar numpy.ndarray cannot be used for fill")
            value = value.item()
        elif type(value) is ndarray:
            value = value._a
        elif not isinstance(value, _SCALARS):
            _refuse(value, "ndarray.__setitem__")
        self._a[_host_index(key, "ndarray.__setitem__")] = value

    def __len__(self) -> int:
        return len(self._a)

    def __iter__(self):
        if self._a.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(len(self._a)))

    __hash__ = None

    def __copy__(self):
        return ndarray._of(self._a.copy())

    def __deepcopy__(self, memo):
        return ndarray._of(self._a.copy())

    # ---------------------------------------------------------------- operators
    __add__, __radd__, __iadd__ = _binary("add"), _binary("add", True), _inplace("add")
    __sub__, __rsub__, __isub__ = (_binary("subtract"), _binary("subtract", True),
                                   _inplace("subtract"))
    __mul__, __rmul__, __imul__ = (_binary("multiply"), _binary("multiply", True),
                                   _inplace("multiply"))
    __truediv__, __rtruediv__, __itruediv__ = (
        _binary("divide"), _binary("divide", True), _inplace("divide"))
    __floordiv__, __rfloordiv__, __ifloordiv__ = (
        _binary("floor_divide"), _binary("floor_divide", True), _inplace("floor_divide"))
    __mod__, __rmod__, __imod__ = (_binary("remainder"), _binary("remainder", True),
                                   _inplace("remainder"))
    __pow__, __rpow__, __ipow__ = _binary("power"), _binary("power", True), _inplace("power")
    __and__, __rand__, __iand__ = (_binary("bitwise_and"), _binary("bitwise_and", True),
                                   _inplace("bitwise_and"))
    __or__, __ror__, __ior__ = (_binary("bitwise_or"), _binary("bitwise_or", True),
                                _inplace("bitwise_or"))
    __xor__, __rxor__, __ixor__ = (_binary("bitwise_xor"), _binary("bitwise_xor", True),
                                   _inplace("bitwise_xor"))
    __lshift__, __rlshift__ = _binary("left_shift"), _binary("left_shift", True)
    __rshift__, __rrshift__ = _binary("right_shift"), _binary("right_shift", True)
    __eq__, __ne__ = _binary("equal"), _binary("not_equal")
    __lt__, __le__ = _binary("less"), _binary("less_equal")
    __gt__, __ge__ = _binary("greater"), _binary("greater_equal")

    def __matmul__(self, other):
        if getattr(type(other), "__array_ufunc__", 0) is None:
            return NotImplemented
        from . import matmul

        return matmul(self, other)

    def __rmatmul__(self, other):
        from . import matmul

        return matmul(other, self)

    def __neg__(self):
        return _UFUNCS["negative"](self)

    def __pos__(self):
        return _UFUNCS["positive"](self)

    def __abs__(self):
        return _UFUNCS["absolute"](self)

    def __invert__(self):
        return _UFUNCS["invert"](self)

    def __divmod__(self, other):
        return _UFUNCS["divmod"](self, other)


def _method(name: str):
    def method(self, *args, **kwargs):
        where = f"ndarray.{name}"
        return _wrap(getattr(self._a, name)(*_unwrap(args, where), **_unwrap_kw(kwargs, where)))

    method.__name__ = name
    return method


# The methods CuPy's ndarray has, as NumPy's ndarray runs them (what is defined above,
# CuPy's own extras such as scatter_add, and writing to files or bytes are not taken).
def _add_methods(names) -> None:
    for name in names:
        if name.startswith("_") or name in ndarray.__dict__ or name in (
                "dump", "dumps", "tofile", "tobytes"):
            continue
        if callable(getattr(np.ndarray, name, None)):
            setattr(ndarray, name, _method(name))


# ------------------------------------------------------------------------ ufuncs


def _operand(x, where: str):
    t = type(x)
    if t is ndarray:
        return x._a
    if isinstance(x, _SCALARS):  # Python and NumPy scalars are kernel arguments
        return x
    _refuse(x, where)


class ufunc:  # noqa: N801 - CuPy's name
    """A CuPy ufunc: operands are device arrays or scalars, nothing else."""

    def __init__(self, np_ufunc: np.ufunc):
        self._f = np_ufunc
        self.name = self.__name__ = np_ufunc.__name__
        self.nin, self.nout, self.nargs = np_ufunc.nin, np_ufunc.nout, np_ufunc.nargs
        self.types = np_ufunc.types

    def _args(self, args, kwargs):
        where = f"cupy.{self.name}"
        args = [_operand(a, where) for a in args]
        out = kwargs.get("out")
        if out is not None:
            outs = out if isinstance(out, tuple) else (out,)
            for o in outs:
                if type(o) is not ndarray:
                    raise TypeError(f"{where}: out must be a cupy.ndarray, got {type(o)}")
            kwargs = dict(kwargs, out=tuple(o._a for o in outs))
        return args, kwargs, out

    def __call__(self, *args, **kwargs):
        args, kwargs, out = self._args(args, kwargs)
        result = self._f(*args, **kwargs)
        return out if out is not None else _wrap(result)

    def at(self, a, indices, b=None):
        if self.name not in ("add", "subtract", "maximum", "minimum"):
            raise NotImplementedError(f"`{self.name}.at` is not supported yet")
        if type(a) is not ndarray:
            raise TypeError(f"cupy.{self.name}.at: a must be a cupy.ndarray, got {type(a)}")
        where = f"cupy.{self.name}.at"
        self._f.at(a._a, _host_index(indices, where),
                   *(() if b is None else (_operand(b, where),)))

    def reduce(self, a, *args, **kwargs):
        return self._method("reduce", a, args, kwargs)

    def accumulate(self, a, *args, **kwargs):
        return self._method("accumulate", a, args, kwargs)

    def reduceat(self, a, indices, *args, **kwargs):
        return self._method("reduceat", a, (_operand(indices, self.name),) + args, kwargs)

    def outer(self, a, b, **kwargs):
        return self._method("outer", a, (_operand(b, self.name),), kwargs)

    def _method(self, method, a, args, kwargs):
        where = f"cupy.{self.name}.{method}"
        if type(a) is not ndarray:
            _refuse(a, where)
        return _wrap(getattr(self._f, method)(a._a, *args, **_unwrap_kw(kwargs, where)))

    def __repr__(self) -> str:
        return f"<ufunc '{self.name}'>"


_UFUNCS: dict[str, ufunc] = {}


# --------------------------------------------------------------------- functions

# Functions whose results are Python facts (shapes, dtypes, strings), not arrays.
_FACTS = {
    "shape", "ndim", "size", "result_type", "can_cast", "promote_types", "min_scalar_type",
    "common_type", "isscalar", "issubdtype", "isdtype", "iterable", "may_share_memory",
    "shares_memory", "broadcast_shapes", "iscomplexobj", "isrealobj", "isfortran",
    "typename", "mintypecode", "get_printoptions", "array2string", "array_repr",
    "array_str", "base_repr", "binary_repr", "format_float_positional",
    "format_float_scientific", "set_printoptions", "printoptions", "byte_bounds",
}
# Arguments that hold the array to work on: a Python list there is host data, which CuPy
# refuses (only cupy.array/asarray turn host data into device arrays).
_DATA_PARAMS = {"a", "x", "ar", "arr", "array", "ary", "m", "condition"}


def function(np_func, name: str):
    """CuPy's ``name``: NumPy's function on the arrays that device arrays hold."""
    facts = name in _FACTS
    try:
        first = next(iter(inspect.signature(np_func).parameters))
    except (TypeError, ValueError, StopIteration):
        first = None
    check_first = first in _DATA_PARAMS
    where = f"cupy.{name}"

    def f(*args, **kwargs):
        if check_first and args and type(args[0]) in (list, tuple):
            _refuse(args[0], where)
        result = np_func(*_unwrap(args, where), **_unwrap_kw(kwargs, where))
        return result if facts else _wrap(result)

    f.__name__ = f.__qualname__ = name
    f.__doc__ = f"CuPy's {name} (stand-in: NumPy's, on device arrays only)."
    return f


def _holds_device(x) -> bool:
    t = type(x)
    return t is ndarray or (t is list or t is tuple) and any(_holds_device(v) for v in x)


def _standin_array(obj, dtype, order: str, copy: bool, ndmin: int = 0) -> ndarray:
    """``cupy.array``/``cupy.asarray`` of anything but a device array."""
    if _holds_device(obj):  # cupy.array([a, b]) of device arrays stays on the device
        return ndarray._of(np.array(_unwrap(obj, "cupy.array"), dtype=dtype, order=order,
                                    ndmin=ndmin))
    host = np.array(obj, dtype=dtype, order=order, ndmin=ndmin, copy=True)
    if host.dtype == object:
        raise ValueError(f"Unsupported dtype object (from {type(obj)})")
    _standin.count("host_to_device", host.nbytes, "cupy.asarray of host data")
    return ndarray._of(host)
