"""Module backward hooks: ``hook(module, grad_input, grad_output)`` after backward has
computed the gradients with respect to a module's inputs.

How, with two identity Functions around the call (PyTorch does the same): the
module's positional tensor inputs that require grad go through ``BackwardHookFunction``
before ``forward``, and its tensor outputs through another one after. Backward reaches
the outputs' identity first, which keeps ``grad_output``; it then flows through the
module's own graph down to the inputs' identity, whose incoming gradients are
``grad_input``: the hooks run there, and a hook that returns a tuple replaces them.
"""

from __future__ import annotations

from typing import Any

from tensorgrad.autograd import Function, hook_result
from tensorgrad.tensor import Tensor


class BackwardHookFunction(Function):
    """The identity on several arrays; its backward hands the gradients to ``on_grad``."""

    @staticmethod
    def forward(ctx, *arrays, on_grad):
        ctx.on_grad = on_grad
        return arrays  # a tuple, even of one: one output per input

    @staticmethod
    def backward(ctx, *grads):
        return ctx.on_grad(grads)


class BackwardHook:
    """The bookkeeping of one module call with full backward hooks."""

    def __init__(self, module: Any, hooks: list):
        self.module = module
        self.hooks = hooks
        self.n_inputs = 0
        self.input_slots: list[int] = []  # positions in grad_input of the wrapped inputs
        self.grad_output: tuple | None = None

    # ------------------------------------------------------------ forward
    def setup_inputs(self, args: tuple) -> tuple:
        """``args`` with the tensors that require grad passed through the identity."""
        tensors = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
        self.n_inputs = len(tensors)
        wrap = [i for i in tensors if args[i].requires_grad]
        self.input_slots = [tensors.index(i) for i in wrap]
        if not wrap:
            return args
        outs = BackwardHookFunction.apply(*(args[i] for i in wrap), on_grad=self._on_input_grad)
        args = list(args)
        for i, out in zip(wrap, outs):
            args[i] = out
        return tuple(args)

    def setup_outputs(self, output: Any) -> Any:
        """``output`` (a tensor, or a tuple/list/named tuple of them) with its tensors
        passed through the identity."""
        single = isinstance(output, Tensor)
        if not single and not isinstance(output, (tuple, list)):
            return output
        items = [output] if single else list(output)
        wrap = [i for i, o in enumerate(items) if isinstance(o, Tensor) and o.requires_grad]
        if not wrap:
            return output
        outs = BackwardHookFunction.apply(*(items[i] for i in wrap), on_grad=self._on_output_grad)
        for i, out in zip(wrap, outs):
            items[i] = out
        if single:
            return items[0]
        if isinstance(output, list):
            return items
        return type(output)(*items) if hasattr(output, "_fields") else tuple(items)

    # ------------------------------------------------------------ backward
    def _on_output_grad(self, grads: tuple) -> tuple:
        self.grad_output = tuple(Tensor(g) for g in grads)
        if not self.input_slots:  # no input needs a gradient: the hooks see all None
            self._run_hooks((None,) * self.n_inputs)
        return grads

    def _on_input_grad(self, grads: tuple) -> tuple:
        grad_input: list = [None] * self.n_inputs
        for slot, g in zip(self.input_slots, grads):
            grad_input[slot] = g
        grad_input = self._run_hooks(tuple(grad_input))
        return tuple(grad_input[slot] for slot in self.input_slots)

    def _run_hooks(self, grad_input: tuple) -> tuple:
        """Each hook sees the current grad_input (Tensors, None where an input needs no
        gradient) and may return a tuple that replaces it; the result as raw arrays."""
        grad_output = self.grad_output or ()
        current = grad_input
        for hook in self.hooks:
            result = hook(self.module, tuple(None if g is None else Tensor(g) for g in current),
                          grad_output)
            if result is None:
                continue
            if not isinstance(result, (tuple, list)) or len(result) != len(current):
                got = len(result) if isinstance(result, (tuple, list)) else type(result).__name__
                raise RuntimeError(
                    f"backward hook {getattr(hook, '__name__', hook)!r} of "
                    f"{type(self.module).__name__} returned an invalid grad_input: expected a "
                    f"tuple of {len(current)}, got {got}")
            # as PyTorch, None in the returned tuple means no gradient for that input
            current = tuple(None if old is None or new is None else hook_result(hook, new, old)
                            for old, new in zip(current, result))
        return current
