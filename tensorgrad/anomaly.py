"""Anomaly mode: find the op where a NaN or an Inf first appears.

    with tg.detect_anomaly():
        loss = model(x)
        loss.backward()     # RuntimeError: ... Function 'Log' returned NaN ...
                            #   in module: layer2.0.conv1 (Conv2d) ...

A NaN in the loss is the end of a chain; the bug is where the chain began. Under
``detect_anomaly()`` every op's forward output and every op's backward result is
checked (``isfinite``), and the first non-finite one raises a ``RuntimeError`` that
names the op (its Function class), the module whose forward ran it (its qualified
name in the model, as ``named_modules`` gives it), its input shapes and the line of
*your* code that called it. For a backward error those were current long before: the
forward records them on the op's graph node (``Node.trace``) when the node is created.

Which module is running is told by ``nn.Module.__call__``, which wraps every forward
in ``module_scope(self)``: a stack per thread of the modules whose forwards are
running, outermost (the model) first. tensorgrad does not import ``nn``; the names come
from the outermost module's ``named_modules()``, walked once per forward of the model.

This costs a check per op and a stack walk per recorded op: a debugging tool, not
something to leave on while training.
"""

from __future__ import annotations

import contextlib
import linecache
import os
import sys
import threading
import traceback
import weakref
from typing import Any

from . import autograd

# Frames from these folders are the library's, not the user's: the report points at
# the innermost frame outside them (tensorgrad itself and the sibling nn/ and models/
# packages, so a NaN inside a layer is reported at the model line that called it).
_HERE = os.path.dirname(os.path.abspath(__file__))
_LIBRARY_DIRS = tuple(
    os.path.join(d, "") for d in (
        _HERE,
        os.path.join(os.path.dirname(_HERE), "nn"),
        os.path.join(os.path.dirname(_HERE), "models"),
    )
)


def user_frame() -> str:
    """``File "...", line N, in f`` and its source line, for the innermost frame of the
    current stack that is outside the library (``contextlib`` frames are skipped too)."""
    for frame, lineno in traceback.walk_stack(sys._getframe(1)):
        filename = os.path.abspath(frame.f_code.co_filename)
        if filename.startswith(_LIBRARY_DIRS):
            continue
        if filename == os.path.abspath(contextlib.__file__):
            continue
        line = linecache.getline(filename, lineno).strip()
        where = f'File "{filename}", line {lineno}, in {frame.f_code.co_name}'
        return f"{where}\n    {line}" if line else where
    return "<unknown location>"


def _nonfinite(a: Any) -> str | None:
    """"NaN", "Inf", "NaN and Inf" or None for a floating-point array."""
    if not (hasattr(a, "dtype") and hasattr(a, "shape")) or a.dtype.kind not in "fc":
        return None
    from .backend import get_array_module

    xp = get_array_module(a)
    if bool(xp.isfinite(a).all()):
        return None
    has_nan, has_inf = bool(xp.isnan(a).any()), bool(xp.isinf(a).any())
    return " and ".join(k for k, v in (("NaN", has_nan), ("Inf", has_inf)) if v)


def _describe(values) -> str:
    parts = []
    for v in values:
        if hasattr(v, "shape") and hasattr(v, "dtype"):
            parts.append(f"{tuple(v.shape)} {v.dtype}")
        else:
            parts.append(type(v).__name__)
    return "[" + ", ".join(parts) + "]"


# ------------------------------------------------------------ which module is running
_running = threading.local()  # .stack: modules whose forward is running; .names: their names
_node_modules: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # Node -> module


class _ModuleScope:
    """Pushes a module on this thread's stack for the duration of its forward."""

    __slots__ = ("module",)

    def __init__(self, module: Any) -> None:
        self.module = module

    def __enter__(self) -> None:
        stack = _stack()
        if not stack:
            _running.names = None  # a new outermost call: its names are resolved lazily
        stack.append(self.module)

    def __exit__(self, *exc) -> None:
        _stack().pop()


_NO_SCOPE = contextlib.nullcontext()


def module_scope(module: Any) -> contextlib.AbstractContextManager:
    """The context ``nn.Module.__call__`` runs ``forward`` in: it records which module
    is running while anomaly mode is on, and does nothing otherwise."""
    return _ModuleScope(module) if _observer.modes else _NO_SCOPE


def _stack() -> list:
    stack = getattr(_running, "stack", None)
    if stack is None:
        stack = _running.stack = []
    return stack


def current_module() -> str | None:
    """The running module, as ``'layer2.0.conv1' (Conv2d)``; None outside any module."""
    stack = _stack()
    if not stack:
        return None
    root = stack[0]
    names = getattr(_running, "names", None)
    if names is None:  # once per outermost forward
        named = getattr(root, "named_modules", None)
        names = _running.names = {id(m): n for n, m in named()} if named else {}
    innermost = stack[-1]
    for module in reversed(stack):  # the innermost one that is part of the model
        name = names.get(id(module))
        if name is None:
            continue
        where = (f"'{name}' ({type(module).__name__})" if name
                 else f"the outermost module ({type(module).__name__})")
        if module is not innermost:  # e.g. a module that is not registered as a child
            where = f"a {type(innermost).__name__} called by {where}"
        return where
    return type(innermost).__name__


def _in_module(where: str | None) -> str:
    return f"  in module: {where}\n" if where else ""


class _AnomalyObserver:
    """Installed in ``autograd.observers`` while at least one ``detect_anomaly`` is open."""

    def __init__(self) -> None:
        self.modes: list[bool] = []  # check_nan of each open detect_anomaly, innermost last

    @property
    def check_nan(self) -> bool:
        return bool(self.modes) and self.modes[-1]

    def before_forward(self, fn: type, args: list) -> None:
        pass

    def after_forward(self, fn: type, args: list, out: Any) -> None:
        if not self.check_nan:
            return
        outs = out if isinstance(out, tuple) else (out,)
        for i, o in enumerate(outs):
            kind = _nonfinite(o)
            if kind:
                which = "its output" if len(outs) == 1 else f"output {i}"
                raise RuntimeError(
                    f"detect_anomaly: Function '{fn.__name__}' returned {kind} values in "
                    f"{which} during forward.\n"
                    f"{_in_module(current_module())}"
                    f"  input shapes: {_describe(args)}{_already(args)}\n"
                    f"  called at: {user_frame()}"
                )

    def recorded(self, node: autograd.Node) -> None:
        node.trace = user_frame()  # backward will need to say where this op came from
        if _stack():
            _node_modules[node] = current_module()

    def before_backward(self, node: autograd.Node, grads: list) -> None:
        pass

    def after_backward(self, node: autograd.Node, grads: list, result: Any) -> None:
        if not self.check_nan:
            return
        results = result if isinstance(result, tuple) else (result,)
        for i, g in enumerate(results):
            kind = _nonfinite(g)
            if kind:
                raise RuntimeError(
                    f"detect_anomaly: Function '{node.name()}' returned {kind} values in "
                    f"its gradient for input {i} during backward.\n"
                    f"{_in_module(_node_modules.get(node))}"
                    f"  input shapes: {_describe(node.inputs)}; incoming gradients: "
                    f"{_describe(grads)}{_already(grads)}\n"
                    f"  the forward of this op was called at: "
                    f"{node.trace or '<unknown: recorded outside detect_anomaly>'}"
                )


def _already(values) -> str:
    """A hint when the op only passed on a NaN/Inf it was given."""
    from .tensor import Tensor

    bad = [i for i, v in enumerate(values) if _nonfinite(v.data if isinstance(v, Tensor) else v)]
    return f" (inputs {bad} already contained NaN/Inf)" if bad else ""


_observer = _AnomalyObserver()


def is_anomaly_enabled() -> bool:
    """Whether a ``detect_anomaly`` block is open."""
    return bool(_observer.modes)


class detect_anomaly(contextlib.ContextDecorator):  # noqa: N801 - named as PyTorch's
    """Context manager and decorator: raise at the first op that produces NaN or Inf.

    ``check_nan=False`` keeps recording where ops were called but stops checking
    (as PyTorch's). Blocks nest; leaving one restores the mode outside it.
    """

    def __init__(self, check_nan: bool = True):
        self.check_nan = check_nan

    def __enter__(self) -> detect_anomaly:
        _observer.modes.append(self.check_nan)
        if _observer not in autograd.observers:
            autograd.observers.append(_observer)
        return self

    def __exit__(self, *exc) -> bool:
        _observer.modes.pop()
        if not _observer.modes:
            autograd.observers.remove(_observer)
        return False
