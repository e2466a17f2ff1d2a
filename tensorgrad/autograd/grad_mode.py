"""Grad mode: whether ops record a graph (``no_grad``, ``enable_grad``)."""

from __future__ import annotations

import contextlib
import functools
import inspect
import threading

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


class set_grad_enabled(_GradMode):
    """``tg.set_grad_enabled(False)`` switches recording off at once (a plain call, as
    PyTorch's); ``with tg.set_grad_enabled(mode):`` and ``@tg.set_grad_enabled(mode)``
    restore the previous mode afterwards."""

    def __init__(self, mode: bool):
        super().__init__(bool(mode))
        self._prev = is_grad_enabled()
        _mode.enabled = self.enabled

    def __enter__(self):
        return self  # the constructor has set the mode already

    def __exit__(self, *exc):
        _mode.enabled = self._prev
        return False

    def __call__(self, fn):
        _mode.enabled = self._prev  # decorating sets nothing; each call does
        return super().__call__(fn)


class _Unchanged(contextlib.ContextDecorator):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def inference_mode(mode=True):
    """PyTorch's faster ``no_grad``; here exactly ``no_grad`` (``inference_mode(False)``
    leaves grad mode as it is). Also usable as ``@tg.inference_mode``."""
    if callable(mode):
        return no_grad(mode)
    return _GradMode(False) if mode else _Unchanged()
