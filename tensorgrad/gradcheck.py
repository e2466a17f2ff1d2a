"""Check analytic gradients against central finite differences, in float64.

For a random weighting ``v`` of the outputs, the analytic gradient of
``L = Σ v·f(x)`` comes from ``backward``; the numeric one perturbs each input
element by ±eps: ``(L(x + eps) - L(x - eps)) / 2eps``. A random ``v`` exercises
every output element at the cost of one backward.

``gradgradcheck`` checks second derivatives the same way: the first derivatives
(computed with ``create_graph=True``) are the function whose gradient is checked.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from . import backend
from .autograd import enable_grad, grad, no_grad
from .tensor import Tensor


class GradcheckError(AssertionError, RuntimeError):
    """Analytic and numeric gradients disagree. An AssertionError (a failed check, as
    pytest reports it) and a RuntimeError (what PyTorch's GradcheckError is)."""


def _outputs(fn, inputs) -> list[Tensor]:
    out = fn(*inputs)
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    return [o for o in outs if isinstance(o, Tensor)]


def gradcheck(fn: Callable, inputs: Sequence | Tensor, eps: float = 1e-6, atol: float = 1e-5,
              rtol: float = 1e-3, *, _what: str = "gradcheck") -> bool:
    """True when ``fn``'s gradients w.r.t. every input that requires grad match
    finite differences; else raises GradcheckError naming the input, the worst
    element and both values. Inputs must be float64."""
    inputs = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    wrt = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not wrt:
        raise ValueError("gradcheck: no input requires grad")
    for i in wrt:
        if inputs[i].dtype != np.float64:
            raise ValueError(
                f"gradcheck: input {i} has dtype {inputs[i].dtype}; finite differences "
                f"need float64 inputs (use .double())"
            )
    outs = _outputs(fn, inputs)
    rng = np.random.default_rng(0)
    weights = [rng.standard_normal(o.shape) for o in outs]

    def loss_value() -> float:
        with no_grad():
            return float(sum(float((backend.to_numpy(o.data) * w).sum())
                             for o, w in zip(_outputs(fn, inputs), weights)))

    # analytic: one backward of the weighted sum
    for i in wrt:
        inputs[i].grad = None
    total = None
    for o, w in zip(outs, weights):
        if not o.requires_grad:
            continue
        term = (o * Tensor(backend.to_device(w.astype(o.dtype), o.device))).sum()
        total = term if total is None else total + term
    if total is not None:
        total.backward()

    for i in wrt:
        x = inputs[i]
        analytic = (np.zeros(x.shape) if x.grad is None else backend.to_numpy(x.grad.data))
        numeric = np.zeros(x.shape)
        if not x.data.flags.c_contiguous:
            x.data = x.data.copy()  # so that the flat view below aliases the input
        flat = x.data.reshape(-1)  # a view: writing it perturbs the input
        for k in range(flat.size):
            orig = flat[k].item()
            flat[k] = orig + eps
            plus = loss_value()
            flat[k] = orig - eps
            minus = loss_value()
            flat[k] = orig
            numeric.reshape(-1)[k] = (plus - minus) / (2 * eps)
        err = np.abs(analytic - numeric) - (atol + rtol * np.abs(numeric))
        if err.size and err.max() > 0:
            worst = tuple(int(k) for k in np.unravel_index(int(np.argmax(err)), x.shape))
            raise GradcheckError(
                f"{_what} failed for input {i} (shape {x.shape}) at element {worst}: "
                f"analytic {analytic[worst]:.8g} vs numeric {numeric[worst]:.8g} "
                f"(atol={atol}, rtol={rtol})"
            )
        x.grad = None
    return True


def gradgradcheck(fn: Callable, inputs: Sequence | Tensor, grad_outputs: Sequence | None = None,
                  eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3) -> bool:
    """True when the second derivatives of ``fn`` match finite differences of its first
    derivatives; else raises GradcheckError as ``gradcheck`` does. The first derivatives
    are vᵀJ for upstream gradients ``grad_outputs`` (seeded random float64 tensors when
    None, as PyTorch), and they are checked w.r.t. the inputs and ``grad_outputs``."""
    inputs = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    wrt = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not wrt:
        raise ValueError("gradgradcheck: no input requires grad")
    outs = [o for o in _outputs(fn, inputs) if o.requires_grad]
    if grad_outputs is None:
        rng = np.random.default_rng(0)
        grad_outputs = [Tensor(backend.to_device(rng.standard_normal(o.shape), o.device),
                               requires_grad=True) for o in outs]
    grad_outputs = (grad_outputs,) if isinstance(grad_outputs, Tensor) else tuple(grad_outputs)
    if len(grad_outputs) != len(outs):
        raise ValueError(f"gradgradcheck: {len(grad_outputs)} grad_outputs for {len(outs)} "
                         f"differentiable outputs")
    n = len(inputs)
    _check_recorded_first_derivatives(fn, inputs, wrt, grad_outputs, atol, rtol)

    def first_derivatives(*args):
        with enable_grad():  # also when gradcheck evaluates it for finite differences
            xs, vs = args[:n], args[n:]
            ys = [o for o in _outputs(fn, xs) if o.requires_grad]
            gs = grad(ys, [xs[i] for i in wrt], list(vs), create_graph=True,
                      allow_unused=True)
        return tuple(g for g in gs if g is not None)

    return gradcheck(first_derivatives, inputs + grad_outputs, eps, atol, rtol,
                     _what="gradgradcheck")


def _check_recorded_first_derivatives(fn, inputs, wrt, grad_outputs, atol, rtol) -> None:
    """The first derivatives that create_graph records must be the ones plain backward
    computes: a recorded backward that gets a value wrong (but consistently) would
    otherwise pass, since only its derivative is compared with finite differences."""
    with enable_grad():
        gs = []
        for create_graph in (True, False):
            ys = [o for o in _outputs(fn, inputs) if o.requires_grad]
            vs = [v.detach() for v in grad_outputs]
            gs.append(grad(ys, [inputs[i] for i in wrt], vs, create_graph=create_graph,
                           allow_unused=True))
    for i, recorded, plain in zip(wrt, *gs):
        if recorded is None or plain is None:
            if (recorded is None) != (plain is None):
                raise GradcheckError(f"gradgradcheck: input {i} gets a gradient only "
                                     f"{'with' if plain is None else 'without'} create_graph")
            continue
        r, p = backend.to_numpy(recorded.data), backend.to_numpy(plain.data)
        if not np.allclose(r, p, atol=atol, rtol=rtol, equal_nan=True):
            k = tuple(int(j) for j in np.unravel_index(int(np.argmax(np.abs(r - p))), r.shape))
            raise GradcheckError(
                f"gradgradcheck failed for input {i} (shape {r.shape}): the first derivative "
                f"recorded with create_graph differs from backward's at element {k}: "
                f"{r[k]:.8g} vs {p[k]:.8g}")
