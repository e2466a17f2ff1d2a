"""A per-op profiler: where does the time of a training step go?

    with tg.profiler.profile() as prof:
        loss = model(x).sum()
        loss.backward()
    print(prof.table())                    # one row per op, slowest first
    prof.export_chrome_trace("trace.json")  # open in https://ui.perfetto.dev

It hooks into the engine through ``autograd.observers``: ``Function.apply`` calls
``before_forward``/``after_forward`` around every op's forward, and the backward
engine calls ``before_backward``/``after_backward`` around every ``Function.backward``.
Each call becomes an ``Event`` with its wall time (``time.perf_counter``) and the
bytes of the arrays it produced (outputs in forward, input gradients in backward).

GPU note: CuPy launches kernels asynchronously, so the clock would only measure the
launch. When an op's inputs or outputs are CuPy arrays the profiler waits for the
device (``synchronize``) before reading the clock; on NumPy nothing is waited for.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from . import autograd, backend


@dataclass
class Event:
    """One forward or backward call of one op."""

    name: str  # the Function's class name, e.g. "MatMul"
    phase: str  # "forward" or "backward"
    start: float  # seconds since the profile began
    duration: float  # seconds
    nbytes: int  # bytes of the arrays it produced
    thread: int


@dataclass
class OpTotals:
    """All calls of one op added up."""

    name: str
    forward_calls: int = 0
    forward_time: float = 0.0
    backward_calls: int = 0
    backward_time: float = 0.0
    nbytes: int = 0

    @property
    def total_time(self) -> float:
        return self.forward_time + self.backward_time


def _arrays(value: Any) -> list:
    """The arrays in an op's result: one array, or a tuple of arrays and Nones."""
    values = value if isinstance(value, (tuple, list)) else (value,)
    return [v for v in values if hasattr(v, "nbytes") and hasattr(v, "shape")]


def _synchronize(arrays: list) -> None:
    """Wait for the GPU work producing ``arrays`` (CuPy is asynchronous); no-op on NumPy."""
    for a in arrays:
        if backend.is_cupy_array(a):
            xp = backend.get_array_module(a)
            xp.cuda.Device(a.device.id).synchronize()


class Profile:
    """What ``profile()`` recorded: raw ``events``, ``totals()``, ``table()``, a trace."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._t0 = time.perf_counter()
        # start times of the calls under way, per thread (a custom op's forward may
        # itself call other ops, so this is a stack)
        self._open = threading.local()

    # ------------------------------------------------- observer protocol (autograd)
    def _push(self, inputs: list) -> None:
        _synchronize(inputs)  # earlier queued GPU work must not count as this op's
        stack = getattr(self._open, "stack", None)
        if stack is None:
            stack = self._open.stack = []
        stack.append(time.perf_counter())

    def _pop(self, name: str, phase: str, produced: list) -> None:
        _synchronize(produced)
        end = time.perf_counter()
        start = self._open.stack.pop()
        nbytes = sum(int(a.nbytes) for a in produced)
        self.events.append(Event(name, phase, start - self._t0, end - start, nbytes,
                                 threading.get_ident()))

    def before_forward(self, fn: type, args: list) -> None:
        self._push(_arrays(args))

    def after_forward(self, fn: type, args: list, out: Any) -> None:
        self._pop(fn.__name__, "forward", _arrays(out))

    def recorded(self, node: autograd.Node) -> None:
        pass

    def before_backward(self, node: autograd.Node, grads: list) -> None:
        self._push(_arrays(grads))

    def after_backward(self, node: autograd.Node, grads: list, result: Any) -> None:
        self._pop(node.name(), "backward", _arrays(result))

    # ------------------------------------------------------------------ reports
    def totals(self) -> dict[str, OpTotals]:
        """Per op name: calls, time and bytes in forward and backward."""
        out: dict[str, OpTotals] = {}
        for e in self.events:
            t = out.setdefault(e.name, OpTotals(e.name))
            if e.phase == "forward":
                t.forward_calls += 1
                t.forward_time += e.duration
            else:
                t.backward_calls += 1
                t.backward_time += e.duration
            t.nbytes += e.nbytes
        return out

    def table(self, limit: int | None = None) -> str:
        """A text table, one row per op, sorted by total (forward + backward) time."""
        rows = sorted(self.totals().values(), key=lambda t: t.total_time, reverse=True)
        if limit is not None:
            rows = rows[:limit]
        header = ("op", "fwd calls", "fwd ms", "bwd calls", "bwd ms", "total ms", "% time",
                  "allocated")
        grand = sum(t.total_time for t in rows) or 1.0
        body = [
            (t.name, str(t.forward_calls), f"{t.forward_time * 1e3:.3f}",
             str(t.backward_calls), f"{t.backward_time * 1e3:.3f}",
             f"{t.total_time * 1e3:.3f}", f"{100 * t.total_time / grand:.1f}",
             _human_bytes(t.nbytes))
            for t in rows
        ]
        widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]

        def fmt(r):  # op name left-aligned, numbers right-aligned
            return "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                             for i, (c, w) in enumerate(zip(r, widths)))

        rule = "-" * len(fmt(header))
        return "\n".join([fmt(header), rule, *map(fmt, body), rule])

    def export_chrome_trace(self, path: str | os.PathLike) -> None:
        """Write the events as Chrome trace-event JSON (Perfetto, chrome://tracing).

        Each call is a complete ("X") event; times are in microseconds. Forward and
        backward are told apart by ``cat`` (and the name's suffix).
        """
        pid = os.getpid()
        trace = {
            "traceEvents": [
                {"name": e.name, "cat": e.phase, "ph": "X", "ts": e.start * 1e6,
                 "dur": e.duration * 1e6, "pid": pid, "tid": e.thread,
                 "args": {"bytes": e.nbytes}}
                for e in self.events
            ],
            "displayTimeUnit": "ms",
        }
        with open(path, "w") as f:
            json.dump(trace, f)


def _human_bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


@contextlib.contextmanager
def profile() -> Iterator[Profile]:
    """Record every op's forward and backward inside the ``with`` block."""
    prof = Profile()
    autograd.observers.append(prof)
    try:
        yield prof
    finally:
        autograd.observers.remove(prof)  # by identity: other observers stay
