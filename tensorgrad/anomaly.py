"""Anomaly mode: find the op where a NaN or an Inf first appears.

    with tg.detect_anomaly():
        loss = model(x)
        loss.backward()     # RuntimeError: ... Function 'Log' returned NaN ...

A NaN in the loss is the end of a chain; the bug is where the chain began. Under
``detect_anomaly()`` every op's forward output and every op's backward result is
checked (``isfinite``), and the first non-finite one raises a ``RuntimeError`` that
names the op (its Function class), its input shapes and the line of *your* code that
called it. For a backward error that line was executed long before: the forward
records it on the op's graph node (``Node.trace``) when the node is created.

This costs a check per op and a stack walk per recorded op: a debugging tool, not
something to leave on while training.
"""

from __future__ import annotations

import contextlib
import linecache
import os
import sys
import traceback
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
                    f"  input shapes: {_describe(args)}{_already(args)}\n"
                    f"  called at: {user_frame()}"
                )

    def recorded(self, node: autograd.Node) -> None:
        node.trace = user_frame()  # backward will need to say where this op came from

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
