"""Module and Parameter: how a network keeps track of its weights.

A ``Module`` watches its own attribute assignments (``__setattr__``): a
``Parameter`` goes into ``_parameters``, a ``Module`` into ``_modules`` and a
tensor declared with ``register_buffer`` into ``_buffers``. Everything else
(``state_dict`` with dotted names, ``parameters()``, ``train()``/``eval()``,
``to(device)``) is a walk over that tree, exactly as in PyTorch::

    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8))
    list(net.state_dict())  # ['0.weight', '0.bias', '1.weight', '1.bias',
                            #  '1.running_mean', '1.running_var', '1.num_batches_tracked']
"""

from __future__ import annotations

import itertools
from collections import OrderedDict, namedtuple
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import numpy as np

import tensorgrad as tg
from tensorgrad import backend
from tensorgrad.tensor import Tensor

from .backward_hook import BackwardHook


class Parameter(Tensor):
    """A Tensor that is a learnable weight of a Module: assigning one to a module
    attribute registers it. It requires grad unless told otherwise."""

    def __init__(self, data: Any = None, requires_grad: bool = True):
        if data is None:
            data = np.empty((0,), dtype=np.float32)
        elif not isinstance(data, Tensor) and not hasattr(data, "dtype"):
            data = tg.tensor(data)  # Python numbers and lists: float32, as torch.tensor
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

    def __reduce_ex__(self, protocol):  # deepcopy/copy keep the Parameter type
        return (_rebuild_parameter, (self.data, self.requires_grad, self.grad))


def _rebuild_parameter(data, requires_grad, grad):
    p = Parameter(data, requires_grad=requires_grad)
    p.grad = grad
    return p


class RemovableHandle:
    """Returned by the ``register_*_hook`` methods; ``.remove()`` unregisters the hook."""

    _next_id = itertools.count()

    def __init__(self, hooks: dict):
        self._hooks = hooks
        self.id = next(RemovableHandle._next_id)

    def remove(self) -> None:
        self._hooks.pop(self.id, None)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


class _IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    """What ``load_state_dict(strict=False)`` returns."""

    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()


def _as_array(value: Any):
    """The raw array of a state_dict value (Tensor, NumPy/CuPy array or number)."""
    if isinstance(value, Tensor):
        return value.data
    if isinstance(value, np.ndarray) or backend.is_cupy_array(value):
        return value
    array = np.asarray(value)
    if array.dtype.kind not in "biufc":  # a string, None, an object...
        raise TypeError(f"expected a Tensor, an array or a number, got {value!r}")
    return array


class Module:
    """Base class of every layer and model. Subclasses set attributes in
    ``__init__`` (after ``super().__init__()``) and define ``forward``."""

    training: bool
    _version = 1

    def __init__(self) -> None:
        # object.__setattr__: our own __setattr__ needs these dicts to exist first
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent_buffers", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())
        object.__setattr__(self, "_backward_hooks", OrderedDict())

    def forward(self, *args, **kwargs):
        raise NotImplementedError(
            f"Module [{type(self).__name__}] is missing the required \"forward\" function"
        )

    def __call__(self, *args, **kwargs):
        for hook in list(self._forward_pre_hooks.values()):
            result = hook(self, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
        backward_hook = None
        if self.__dict__.get("_backward_hooks") and tg.is_grad_enabled():
            backward_hook = BackwardHook(self, list(self._backward_hooks.values()))
            args = backward_hook.setup_inputs(args)
        with tg.anomaly.module_scope(self):  # so detect_anomaly can name the module
            output = self.forward(*args, **kwargs)
        for hook in list(self._forward_hooks.values()):
            result = hook(self, args, output)
            if result is not None:
                output = result
        if backward_hook is not None:
            output = backward_hook.setup_outputs(output)
        return output

    # ------------------------------------------------------------ registry
    def __setattr__(self, name: str, value: Any) -> None:
        params = self.__dict__.get("_parameters")
        if isinstance(value, Parameter):
            if params is None:
                raise AttributeError("cannot assign parameters before Module.__init__() call")
            self._forget(name, keep=self._parameters)
            self.register_parameter(name, value)
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(f"cannot assign '{type(value).__name__}' as parameter "
                                f"'{name}' (nn.Parameter or None expected)")
            params[name] = None
        elif isinstance(value, Module):
            if params is None:
                raise AttributeError("cannot assign module before Module.__init__() call")
            self._forget(name, keep=self._modules)
            self._modules[name] = value
        elif params is not None and name in self._modules:
            if value is not None:
                raise TypeError(f"cannot assign '{type(value).__name__}' as child module "
                                f"'{name}' (nn.Module or None expected)")
            self._modules[name] = None
        elif params is not None and name in self._buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign '{type(value).__name__}' as buffer '{name}' "
                                f"(Tensor or None expected)")
            self._buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def _forget(self, name: str, keep: dict) -> None:
        """Remove ``name`` from the instance dict and every registry but ``keep`` (which
        is about to get the new value in the same place, so its order is kept)."""
        self.__dict__.pop(name, None)
        for registry in (self._parameters, self._buffers, self._modules):
            if registry is not keep:
                registry.pop(name, None)
        self._non_persistent_buffers.discard(name)

    def __getattr__(self, name: str) -> Any:
        # only called when normal lookup fails: look in the registries
        d = self.__dict__
        for registry in ("_parameters", "_buffers", "_modules"):
            if registry in d and name in d[registry]:
                return d[registry][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        for registry in (self._parameters, self._buffers, self._modules):
            if name in registry:
                del registry[name]
                self._non_persistent_buffers.discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers)
                      | set(self._modules))

    def _check_registration(self, kind: str, name: str, value: Any, required: type,
                            registry: dict) -> None:
        """Before ``register_parameter``/``register_buffer`` changes anything: a usable
        name, a value of the ``required`` type (or None), and no clash with an attribute
        that lives somewhere else (a method, a submodule, a plain attribute)."""
        _check_member_name(kind, name)
        if value is not None and not isinstance(value, required):
            required_name = "nn.Parameter" if required is Parameter else required.__name__
            raise TypeError(f"cannot assign '{type(value).__name__}' object to {kind} "
                            f"'{name}' ({required_name} or None required)")
        if hasattr(self, name) and name not in registry:
            raise KeyError(f"attribute '{name}' already exists")

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        self._check_registration("parameter", name, param, Parameter, self._parameters)
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """A tensor that is part of the module's state but not learned (e.g. BatchNorm's
        running mean). Persistent buffers appear in ``state_dict``."""
        self._check_registration("buffer", name, tensor, Tensor, self._buffers)
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers.discard(name)
        else:
            self._non_persistent_buffers.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        if not isinstance(module, Module) and module is not None:
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        _check_member_name("module", name)
        self._modules[name] = module

    register_module = add_module

    def get_submodule(self, target: str) -> Module:
        """The submodule at dotted path ``target`` ("" is the module itself)."""
        module = self
        for part in target.split(".") if target else []:
            if part not in module._modules:
                raise AttributeError(f"{type(module).__name__} has no submodule '{part}' "
                                     f"(looking up '{target}')")
            module = module._modules[part]
        return module

    # ------------------------------------------------------------ iteration
    def named_modules(self, memo: set | None = None, prefix: str = "",
                      remove_duplicate: bool = True) -> Iterator[tuple[str, Module]]:
        if memo is None:
            memo = set()
        if remove_duplicate:
            if self in memo:
                return
            memo.add(self)
        yield prefix, self
        for name, module in self._modules.items():
            if module is None:
                continue
            sub = prefix + ("." if prefix else "") + name
            yield from module.named_modules(memo, sub, remove_duplicate)

    def modules(self, remove_duplicate: bool = True) -> Iterator[Module]:
        for _, m in self.named_modules(remove_duplicate=remove_duplicate):
            yield m

    def named_children(self) -> Iterator[tuple[str, Module]]:
        seen = set()
        for name, module in self._modules.items():
            if module is not None and module not in seen:
                seen.add(module)
                yield name, module

    def children(self) -> Iterator[Module]:
        for _, m in self.named_children():
            yield m

    def _named_members(self, registry: str, prefix: str, recurse: bool,
                       remove_duplicate: bool = True):
        seen = set()
        modules = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) \
            if recurse else [(prefix, self)]
        for module_prefix, module in modules:
            for name, value in getattr(module, registry).items():
                if value is None or (remove_duplicate and value in seen):
                    continue
                seen.add(value)
                yield module_prefix + ("." if module_prefix else "") + name, value

    def named_parameters(self, prefix: str = "", recurse: bool = True,
                         remove_duplicate: bool = True) -> Iterator[tuple[str, Parameter]]:
        """(dotted name, parameter) pairs; a parameter shared by two modules comes once."""
        yield from self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True,
                      remove_duplicate: bool = True) -> Iterator[tuple[str, Tensor]]:
        yield from self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    # ------------------------------------------------------------ modes
    def train(self, mode: bool = True) -> Module:
        if not isinstance(mode, bool):
            raise ValueError(f"training mode is expected to be boolean, got {mode!r}")
        self.training = mode
        for module in self.children():
            module.train(mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.parameters():
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                p.grad.data[...] = 0

    def apply(self, fn: Callable[[Module], None]) -> Module:
        """Call ``fn`` on every submodule (children first) and then on self."""
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    # ------------------------------------------------------------ devices
    def to(self, *args, device=None, dtype=None) -> Module:
        """Move every parameter and buffer in place (``model.to("cuda")``,
        ``model.to(tg.float64)``); Parameter objects stay the same, so an optimizer
        built before the move still holds them. Only floating tensors change dtype."""
        for a in args:
            if isinstance(a, (np.dtype, type)) or (isinstance(a, str) and _is_dtype_name(a)):
                dtype = a
            else:
                device = a
        device = None if device is None else backend.parse_device(device)
        dtype = None if dtype is None else np.dtype(dtype)
        if dtype is not None and dtype.kind not in "fc":  # before anything changes
            raise TypeError(f"Module.to only accepts floating point dtypes, got {dtype}")

        def convert(array):
            if dtype is not None and array.dtype.kind == "f":
                array = array.astype(dtype, copy=False)
            if device is not None:
                array = backend.to_device(array, device)
            return array

        for t in itertools.chain(self.parameters(), self.buffers()):
            t.data = convert(t.data)
            if t.grad is not None:
                t.grad.data = convert(t.grad.data)
        return self

    def cuda(self, device: int | None = None) -> Module:
        return self.to("cuda" if device is None else f"cuda:{device}")

    def cpu(self) -> Module:
        return self.to("cpu")

    def float(self) -> Module:
        return self.to(dtype=np.float32)

    def double(self) -> Module:
        return self.to(dtype=np.float64)

    def half(self) -> Module:
        return self.to(dtype=np.float16)

    # ------------------------------------------------------------ hooks
    def register_forward_hook(self, hook: Callable) -> RemovableHandle:
        """``hook(module, inputs, output)`` runs after ``forward``; a non-None return
        value replaces the output."""
        handle = RemovableHandle(self._forward_hooks)
        self._forward_hooks[handle.id] = hook
        return handle

    def register_forward_pre_hook(self, hook: Callable) -> RemovableHandle:
        """``hook(module, inputs)`` runs before ``forward``; a non-None return value
        (a tuple, or a single value) replaces the inputs."""
        handle = RemovableHandle(self._forward_pre_hooks)
        self._forward_pre_hooks[handle.id] = hook
        return handle

    def register_full_backward_hook(self, hook: Callable) -> RemovableHandle:
        """``hook(module, grad_input, grad_output)`` runs when backward has computed the
        gradients with respect to the module's positional tensor inputs. Both are tuples
        of Tensors (None for an input that needs no gradient); a returned tuple replaces
        grad_input, as in PyTorch (see nn/backward_hook.py)."""
        handle = RemovableHandle(self._backward_hooks)
        self._backward_hooks[handle.id] = hook
        return handle

    # ------------------------------------------------------------ state
    def state_dict(self, destination: dict | None = None, prefix: str = "",
                   keep_vars: bool = False) -> OrderedDict:
        """Every parameter and persistent buffer by dotted name, as detached Tensors
        sharing memory with the module (as PyTorch)."""
        if destination is None:
            destination = OrderedDict()
        for name, p in self._parameters.items():
            if p is not None:
                destination[prefix + name] = p if keep_vars else p.detach()
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent_buffers:
                destination[prefix + name] = b if keep_vars else b.detach()
        for name, module in self._modules.items():
            if module is not None:
                module.state_dict(destination, prefix + name + ".", keep_vars)
        return destination

    def _state_tensors(self) -> OrderedDict:
        """The live tensors that ``state_dict`` names (duplicates keep every name)."""
        return self.state_dict(keep_vars=True)

    def load_state_dict(self, state_dict: dict, strict: bool = True) -> _IncompatibleKeys:
        """Copy values (Tensors or arrays) into the parameters and buffers, in place.

        Every key and shape is checked before anything is written: a mismatched shape
        always raises, and so do missing or unexpected keys when ``strict``; the module
        is then left untouched. Returns ``(missing_keys, unexpected_keys)``.
        """
        if not isinstance(state_dict, dict):
            raise TypeError(f"expected state_dict to be dict-like, got {type(state_dict).__name__}")
        own = self._state_tensors()
        # as PyTorch, BatchNorm checkpoints from before ``num_batches_tracked`` existed
        # load: a missing counter is not an error, it keeps its value
        missing = [k for k in own if k not in state_dict
                   and k.rpartition(".")[2] != "num_batches_tracked"]
        unexpected = [k for k in state_dict if k not in own]
        errors = []
        if strict:
            if unexpected:
                errors.append("Unexpected key(s) in state_dict: "
                              + ", ".join(f'"{k}"' for k in unexpected) + ". ")
            if missing:
                errors.append("Missing key(s) in state_dict: "
                              + ", ".join(f'"{k}"' for k in missing) + ". ")
        arrays = {}
        for key, target in own.items():
            if key not in state_dict:
                continue
            try:
                value = _as_array(state_dict[key])
            except Exception as e:  # an object that is no array at all
                errors.append(f'While copying the parameter named "{key}", could not convert '
                              f"a {type(state_dict[key]).__name__} to an array ({e}).")
                continue
            if tuple(value.shape) != target.shape:
                errors.append(
                    f"size mismatch for {key}: copying a param with shape {tuple(value.shape)} "
                    f"from checkpoint, the shape in current model is {target.shape}."
                )
                continue
            arrays[key] = value
        if errors:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                               + "\n\t".join(errors))
        for key, value in arrays.items():
            target = own[key]
            value = backend.to_device(value, target.device)
            target.data[...] = value.astype(target.dtype, copy=False)
            target._bump_version()
        return _IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------ repr
    def extra_repr(self) -> str:
        """The text between the parentheses of this module's repr line."""
        return ""

    def __repr__(self) -> str:
        lines = [line for line in self.extra_repr().split("\n") if line]
        for name, module in self._modules.items():
            body = repr(module).replace("\n", "\n  ")
            lines.append(f"({name}): {body}")
        head = type(self).__name__ + "("
        if not lines:
            return head + ")"
        if len(lines) == 1 and not self._modules:
            return head + lines[0] + ")"
        return head + "\n  " + "\n  ".join(lines) + "\n)"


def _check_member_name(kind: str, name: str) -> None:
    # "." separates the levels of a state_dict key ("layer1.0.conv1.weight"), so a name
    # containing one could not be told apart from a nested one
    if "." in name or name == "":
        raise KeyError(f"{kind} name must be a non-empty string without '.', got {name!r}")


def _is_dtype_name(name: str) -> bool:
    if name.lower() == "cpu" or name.lower().startswith("cuda"):
        return False
    try:
        np.dtype(name)
        return True
    except TypeError:
        return False


class Identity(Module):
    """Returns its input unchanged (a placeholder, e.g. for a fused-away BatchNorm)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__()

    def forward(self, x):
        return x


class Sequential(Module):
    """Modules called one after the other; children are named "0", "1", ...
    (or by the keys of an OrderedDict)."""

    def __init__(self, *args: Module):
        super().__init__()
        if len(args) == 1 and isinstance(args[0], OrderedDict):
            for name, module in args[0].items():
                self.add_module(name, module)
        else:
            for i, module in enumerate(args):
                self.add_module(str(i), module)

    def forward(self, x):
        for module in self._modules.values():
            x = module(x)
        return x

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return type(self)(OrderedDict(list(self._modules.items())[idx]))
        return list(self._modules.values())[_check_index(idx, len(self))]

    def __setitem__(self, idx: int, module: Module) -> None:
        key = list(self._modules)[_check_index(idx, len(self))]
        setattr(self, key, module)

    def __delitem__(self, idx) -> None:
        keys = list(self._modules)
        for key in (keys[idx] if isinstance(idx, slice) else [keys[_check_index(idx, len(self))]]):
            del self._modules[key]

    def append(self, module: Module) -> Sequential:
        self.add_module(str(len(self)), module)
        return self


class ModuleList(Module):
    """A list of modules, registered so that their parameters are found.
    It has no ``forward``: the owner decides how to call them."""

    def __init__(self, modules: Iterable[Module] | None = None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return ModuleList(list(self._modules.values())[idx])
        return self._modules[str(_check_index(idx, len(self)))]

    def __setitem__(self, idx: int, module: Module) -> None:
        self.add_module(str(_check_index(idx, len(self))), module)

    def __delitem__(self, idx) -> None:
        modules = list(self._modules.values())
        del modules[idx]
        self._modules.clear()
        self.extend(modules)

    def append(self, module: Module) -> ModuleList:
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules: Iterable[Module]) -> ModuleList:
        for m in modules:
            self.append(m)
        return self

    def insert(self, index: int, module: Module) -> None:
        modules = list(self._modules.values())
        modules.insert(index, module)
        self._modules.clear()
        self.extend(modules)

    def __repr__(self) -> str:
        """As PyTorch's: runs of identical children are written once, ``(0-5): 6 x Block(...)``."""
        if not self._modules:
            return "ModuleList()"
        runs: list[list] = []  # [first index, last index, repr]
        for i, module in enumerate(self._modules.values()):
            text = repr(module)
            if runs and runs[-1][2] == text:
                runs[-1][1] = i
            else:
                runs.append([i, i, text])
        lines = [(f"({a}): {text}" if a == b else f"({a}-{b}): {b - a + 1} x {text}")
                 .replace("\n", "\n  ") for a, b, text in runs]
        return "ModuleList(\n  " + "\n  ".join(lines) + "\n)"


class ModuleDict(Module):
    """An ordered dict of modules, registered under their keys (so their parameters are
    found and ``state_dict`` names them ``key.weight``). It has no ``forward``."""

    def __init__(self, modules: Mapping[str, Module] | Iterable[tuple[str, Module]] | None = None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key: str) -> Module:
        if key not in self._modules:
            raise KeyError(key)
        return self._modules[key]

    def __setitem__(self, key: str, module: Module) -> None:
        if not isinstance(key, str):
            raise TypeError(f"ModuleDict keys must be strings, got {type(key).__name__}")
        self.add_module(key, module)

    def __delitem__(self, key: str) -> None:
        del self._modules[key]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[str]:
        return iter(self._modules)

    def __contains__(self, key: object) -> bool:
        return key in self._modules

    def keys(self):
        return self._modules.keys()

    def values(self):
        return self._modules.values()

    def items(self):
        return self._modules.items()

    def clear(self) -> None:
        self._modules.clear()

    def pop(self, key: str) -> Module:
        module = self[key]
        del self[key]
        return module

    def update(self, modules: Mapping[str, Module] | Iterable[tuple[str, Module]]) -> None:
        """Add (or replace) modules from a mapping or from (key, module) pairs; everything
        is checked before anything is added."""
        if isinstance(modules, Mapping):
            pairs = list(modules.items())
        else:
            pairs = []
            for i, pair in enumerate(modules):
                if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                    raise ValueError(f"ModuleDict.update: element #{i} should be a (key, module) "
                                     f"pair, got {pair!r}")
                pairs.append(tuple(pair))
        for key, module in pairs:
            if not isinstance(key, str):
                raise TypeError(f"ModuleDict keys must be strings, got {type(key).__name__}")
            if not isinstance(module, Module) and module is not None:
                raise TypeError(f"ModuleDict[{key!r}]: {type(module).__name__} is not a "
                                f"Module subclass")
            _check_member_name("module", key)
        for key, module in pairs:
            self[key] = module


def _check_index(idx: int, n: int) -> int:
    if not isinstance(idx, (int, np.integer)):
        raise TypeError(f"index must be an int or a slice, got {type(idx).__name__}")
    if not -n <= idx < n:
        raise IndexError(f"index {idx} is out of range for a container of {n} modules")
    return int(idx) % n
