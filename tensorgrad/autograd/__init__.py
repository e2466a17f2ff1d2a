"""Reverse-mode automatic differentiation, one file per part:

- ``grad_mode.py``: whether ops record a graph (``no_grad``, ``enable_grad``);
- ``function.py``: ``Function`` (every op is one), its ``ctx`` and the graph ``Node``;
- ``engine.py``: the backward pass over the recorded graph;
- ``traced.py``: how the same backward formulas record a graph (``create_graph``);
- ``api.py``: ``backward`` and ``grad``, PyTorch's entry points;
- ``functional.py``: ``jacobian``, ``hessian``, ``vjp``, ``jvp``, ``hvp`` built on them.
"""

from . import functional
from .api import backward, grad
from .engine import hook_result, run_backward, topological_order, unbroadcast
from .function import (
    Context,
    DelayedError,
    Function,
    Node,
    SavedTensor,
    observers,
    once_differentiable,
    storage_root,
)
from .grad_mode import enable_grad, is_grad_enabled, no_grad

__all__ = [
    "Context", "DelayedError", "Function", "backward", "functional", "grad",
    "once_differentiable", "Node", "SavedTensor", "enable_grad", "hook_result",
    "is_grad_enabled", "no_grad", "observers", "run_backward", "storage_root",
    "topological_order", "unbroadcast",
]
