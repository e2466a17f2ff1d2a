"""The Optimizer base class: parameter groups, per-parameter state, checkpoints.

An optimizer holds ``param_groups``, a list of dicts, each with its ``params`` and
its hyperparameters (``lr`` ...), so different parts of a model can learn at
different rates; ``state[p]`` holds the running buffers of parameter ``p``
(momentum, squared-gradient averages ...). ``step()`` first checks every gradient
(shape, dtype, device) and only then updates, so a failed step changes nothing.
Updates are in-place array operations on ``p.data``: no graph is recorded, but each
updated parameter's version counter is bumped (as PyTorch's in-place update does), so a
backward through a graph that saved the old values raises instead of using the new ones.

``state_dict()`` follows PyTorch's layout, with parameters replaced by their index
in the order of the groups::

    {"state": {0: {"momentum_buffer": Tensor}, ...},
     "param_groups": [{"lr": 0.1, "momentum": 0.9, ..., "params": [0, 1, 2]}]}
"""

from __future__ import annotations

import itertools
import numbers
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

import tensorgrad as tg
from tensorgrad import backend
from tensorgrad.tensor import Tensor, check_grad


class Optimizer:
    def __init__(self, params: Iterable, defaults: dict[str, Any]):
        self.defaults = defaults
        # a defaultdict, as PyTorch's: ``opt.state[p]`` is {} for a parameter with no state
        self.state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of "
                            "Tensors or dicts, but got a Tensor")
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters; hyperparameters it does not set take the defaults."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, got {type(param_group).__name__}")
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError("optimizer parameters need to be organized in ordered collections, "
                            "but the ordering of tensors in sets will change between runs; "
                            "use a list instead")
        params = list(params)
        names = None
        if params and all(isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str)
                          for p in params):  # model.named_parameters(), as PyTorch 2 allows
            names, params = [n for n, _ in params], [p for _, p in params]
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, got {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor")
        if len({id(p) for p in params}) != len(params):
            raise ValueError("optimizer contains a parameter group with duplicate parameters")
        existing = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in existing for p in params):
            raise ValueError("some parameters appear in more than one parameter group")
        group = dict(param_group, params=params)
        if names is not None:
            group["param_names"] = names
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        self.param_groups.append(group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.data[...] = 0
                    p.grad._bump_version()

    # ------------------------------------------------------------ stepping
    def step(self, closure: Callable[[], Any] | None = None):
        """One update of every parameter that has a gradient. ``closure``, if given,
        re-evaluates the model and returns the loss (which ``step`` returns)."""
        loss = None
        if closure is not None:
            with tg.enable_grad():
                loss = closure()
        self._check_grads()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                self._update(p, p.grad.data, state, group)
                # the update wrote p.data in place: a backward that saved p must see that
                p._bump_version()
                if not state:  # a stateless rule (plain SGD) keeps no entry, as PyTorch
                    del self.state[p]
        return loss

    def _update(self, p: Tensor, grad, state: dict, group: dict) -> None:
        """Apply this optimizer's rule to one parameter (``grad`` is a raw array)."""
        raise NotImplementedError

    def _check_grads(self) -> None:
        for i, p in enumerate(itertools.chain.from_iterable(g["params"]
                                                            for g in self.param_groups)):
            # .grad was checked when assigned, but its array may have been replaced since
            if p.grad is not None:
                check_grad(p, p.grad, f"parameter {i}: gradient")

    @staticmethod
    def _zeros_like(p: Tensor) -> Tensor:
        return Tensor(backend.get_array_module(p.data).zeros_like(p.data))

    # ------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """A snapshot (copies) of the state and the groups, parameters as indices."""
        index = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = []
            for p in group["params"]:
                index.setdefault(id(p), len(index))
                packed["params"].append(index[id(p)])
            groups.append(packed)
        state = {}
        for p, s in self.state.items():
            if id(p) in index:
                state[index[id(p)]] = {k: (Tensor(v.data.copy()) if isinstance(v, Tensor) else v)
                                       for k, v in s.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a ``state_dict()`` (also one that went through ``tg.save``/``tg.load``,
        where the integer keys came back as strings). Everything is checked first."""
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"loaded state dict has {len(saved_groups)} parameter groups but "
                             f"the optimizer has {len(self.param_groups)}")
        for i, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(f"loaded state dict's parameter group {i} has "
                                 f"{len(saved['params'])} parameters but the optimizer's "
                                 f"has {len(group['params'])}")
        by_index = {
            int(i): p
            for i, p in zip(itertools.chain.from_iterable(g["params"] for g in saved_groups),
                            itertools.chain.from_iterable(g["params"] for g in self.param_groups))
        }
        new_state = {}
        for key, saved in state_dict["state"].items():
            if int(key) not in by_index:
                raise ValueError(f"loaded state dict has state for parameter {key}, which is "
                                 f"not in any parameter group")
            p = by_index[int(key)]
            new_state[p] = {name: self._restore_value(name, value, p)
                            for name, value in saved.items()}
        new_groups = []
        for saved, group in zip(saved_groups, self.param_groups):
            restored = {k: (tuple(v) if k == "betas" else v)
                        for k, v in saved.items() if k != "params"}
            restored["params"] = group["params"]
            new_groups.append(restored)
        self.state = defaultdict(dict, new_state)
        self.param_groups = new_groups

    @staticmethod
    def _restore_value(name: str, value: Any, p: Tensor) -> Any:
        """A saved state entry as this optimizer keeps it: per-element buffers as
        Tensors of the parameter's shape, dtype and device; step counts as ints."""
        if name == "step":
            return int(value.item() if isinstance(value, Tensor) else np.asarray(value).item())
        if isinstance(value, Tensor):
            value = value.data
        if not (isinstance(value, np.ndarray) or backend.is_cupy_array(value)):
            return value
        if tuple(value.shape) != p.shape:
            raise ValueError(f"loaded state '{name}' has shape {tuple(value.shape)} but the "
                             f"parameter has shape {p.shape}")
        array = backend.to_device(value, p.device)
        return Tensor(array.astype(p.dtype, copy=True))

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(k for k in group if k != "params"):
                lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)


def check_hyperparameter(name: str, value: float, low: float = 0.0,
                         high: float | None = None) -> None:
    """Raise ValueError unless low <= value (< high); TypeError if it is no number."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"Invalid {name} value: {value!r} (expected a number)")
    if not (value >= low and (high is None or value < high)):
        bound = f"in [{low}, {high})" if high is not None else f">= {low}"
        raise ValueError(f"Invalid {name} value: {value} (expected {bound})")
