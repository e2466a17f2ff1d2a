"""Higher-order gradients: three things that differentiate a backward pass, each checked.

``create_graph=True`` makes the backward pass record a graph of its own, so a gradient
can be differentiated again (docs/how-it-works.md, "Higher-order gradients"):

1. **WGAN-GP** (Gulrajani et al. 2017). A small conv critic D is trained on real
   versus fake 8×8 images with the loss D(fake) − D(real) + λ · (‖∇ₓD(x̂)‖ − 1)² at
   random interpolates x̂. The penalty is a function of an input gradient, so its own
   gradient w.r.t. the critic's weights goes through the backward of the convolutions
   (a transposed convolution and the weight-gradient op), differentiated. Checked: that
   gradient against central finite differences on one weight, and ‖∇ₓD‖ moving to 1.
2. **Hessian-vector product** of an MLP's loss w.r.t. its weights, H·v = ∇(∇L · v) (two
   backward passes, no Hessian formed), against finite differences of the gradient,
   (∇L(θ + εv) − ∇L(θ − εv)) / 2ε.
3. **MAML** (Finn et al. 2017), one meta-step: an inner SGD step θ' = θ − α ∇L_train(θ)
   taken with create_graph=True, then the outer loss L_test(θ') differentiated w.r.t.
   θ through the inner step. Checked against finite differences of the outer loss
   w.r.t. one meta-parameter; the first-order approximation (FOMAML, which drops the
   second derivatives) is printed beside it.

Float64 throughout, since finite differences are the reference. Each part prints one
line saying what it checked; the script exits 1 if a check fails.

    python examples/higher_order.py
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # tiny matrices: one thread is fastest

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a plain checkout

import nn  # noqa: E402
import tensorgrad as tg  # noqa: E402
import tensorgrad.functional as F  # noqa: E402

EPS = 1e-6  # finite-difference step (float64)
TOLERANCE = 1e-6  # relative error accepted against finite differences


def relative_error(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-12))


# ------------------------------------------------------------------ 1. WGAN-GP


def critic() -> nn.Module:
    """8×8 image → score: conv3×3(8)–LeakyReLU, conv3×3/2(8)–LeakyReLU, linear."""
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.LeakyReLU(0.2),
        nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
        nn.Flatten(), nn.Linear(8 * 4 * 4, 1),
    ).double()


def real_and_fake(rng: np.random.Generator, n: int) -> tuple[tg.Tensor, tg.Tensor]:
    """Real: a Gaussian blob at a random place. Fake: what an untrained generator
    makes, low-contrast noise."""
    yy, xx = np.mgrid[0:8, 0:8]
    cy, cx = rng.uniform(2, 6, size=(2, n, 1, 1))
    real = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 3.0)[:, None]
    fake = rng.uniform(0, 0.5, size=(n, 1, 8, 8))
    return tg.tensor(real), tg.tensor(fake)


def gradient_penalty(d: nn.Module, real: tg.Tensor, fake: tg.Tensor, alpha: tg.Tensor):
    """(mean (‖∇ₓD(x̂)‖ − 1)², mean ‖∇ₓD(x̂)‖) at x̂ = α·real + (1 − α)·fake."""
    x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    # create_graph: the input gradient is a Tensor with a graph, so the penalty built
    # from it can be differentiated w.r.t. the critic's weights
    (g,) = tg.autograd.grad(d(x_hat).sum(), x_hat, create_graph=True)
    norms = ((g * g).sum(dim=(1, 2, 3)) + 1e-12).sqrt()
    return ((norms - 1) ** 2).mean(), norms.mean()


def wgan_gp(steps: int = 30, batch: int = 16, lam: float = 10.0) -> tuple[bool, str]:
    tg.manual_seed(0)
    rng = np.random.default_rng(0)
    d = critic()
    opt = nn.optim.Adam(d.parameters(), lr=2e-3, betas=(0.5, 0.9))
    penalties, norms = [], []
    for step in range(steps):
        real, fake = real_and_fake(rng, batch)
        alpha = tg.tensor(rng.uniform(size=(batch, 1, 1, 1)))
        penalty, norm = gradient_penalty(d, real, fake, alpha)
        wasserstein = d(fake).mean() - d(real).mean()
        loss = wasserstein + lam * penalty
        opt.zero_grad()
        loss.backward()  # through the penalty: a double backward of the critic
        opt.step()
        penalties.append(penalty.item())
        norms.append(norm.item())
        if step % 10 == 0 or step == steps - 1:
            print(f"  step {step:2d}  critic loss {loss.item():+.4f}  "
                  f"penalty {penalty.item():.4f}  mean |grad_x D| {norm.item():.4f}")

    # d(penalty)/d(one weight of the first conv), by double backward and by differences
    real, fake = real_and_fake(rng, batch)
    alpha = tg.tensor(rng.uniform(size=(batch, 1, 1, 1)))
    weight = d[0].weight
    d.zero_grad()
    gradient_penalty(d, real, fake, alpha)[0].backward()
    analytic = weight.grad.numpy()[2, 0, 1, 1]
    values = []
    for sign in (1, -1):
        weight.data[2, 0, 1, 1] += sign * EPS
        values.append(gradient_penalty(d, real, fake, alpha)[0].item())
        weight.data[2, 0, 1, 1] -= sign * EPS
    numeric = (values[0] - values[1]) / (2 * EPS)
    err = relative_error(analytic, numeric)
    trained = penalties[-1] < penalties[0] and abs(norms[-1] - 1) < abs(norms[0] - 1)
    line = (f"wgan-gp: d penalty / d conv1.weight[2,0,1,1] = {analytic:.6e}, finite "
            f"differences {numeric:.6e}, relative error {err:.1e}; penalty "
            f"{penalties[0]:.4f} -> {penalties[-1]:.4f}, mean |grad_x D| "
            f"{norms[0]:.3f} -> {norms[-1]:.3f} (toward 1)")
    return err < TOLERANCE and trained, line


# ------------------------------------------------------------------ 2. Hessian-vector product


def mlp_loss(model: nn.Module, x: tg.Tensor, y: tg.Tensor) -> tg.Tensor:
    return F.cross_entropy(model(x), y)


def hessian_vector_product() -> tuple[bool, str]:
    tg.manual_seed(1)
    rng = np.random.default_rng(1)
    model = nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 3)).double()
    params = list(model.parameters())
    x = tg.tensor(rng.standard_normal((32, 5)))
    y = tg.tensor(rng.integers(0, 3, size=32))
    v = [tg.tensor(rng.standard_normal(p.shape)) for p in params]

    # H v = ∇(∇L · v): the first gradient keeps its graph, the dot product is a scalar
    grads = tg.autograd.grad(mlp_loss(model, x, y), params, create_graph=True)
    dot = sum((g * vi).sum() for g, vi in zip(grads, v))
    hv = tg.autograd.grad(dot, params)

    def gradient_at(shift: float) -> list[np.ndarray]:
        for p, vi in zip(params, v):
            p.data += shift * vi.data
        gs = tg.autograd.grad(mlp_loss(model, x, y), params)
        for p, vi in zip(params, v):
            p.data -= shift * vi.data
        return [g.numpy() for g in gs]

    plus, minus = gradient_at(EPS), gradient_at(-EPS)
    numeric = np.concatenate([((a - b) / (2 * EPS)).ravel() for a, b in zip(plus, minus)])
    analytic = np.concatenate([h.numpy().ravel() for h in hv])
    err = relative_error(analytic, numeric)
    n = sum(p.numel() for p in params)
    line = (f"hvp: Hessian-vector product of an MLP's cross-entropy loss ({n} weights) "
            f"vs finite differences of the gradient: max relative error {err:.1e}")
    return err < TOLERANCE, line


# ------------------------------------------------------------------ 3. MAML


def regressor(params: list[tg.Tensor], x: tg.Tensor) -> tg.Tensor:
    """A 1 → 32 → 1 tanh MLP written on explicit weights, so that it can be evaluated
    at the adapted weights θ' as well as at θ."""
    w1, b1, w2, b2 = params
    return F.linear(F.linear(x, w1, b1).tanh(), w2, b2)


def maml_outer_loss(theta, x_train, y_train, x_test, y_test, lr_inner: float,
                    create_graph: bool = True):
    """L_test(θ − α ∇L_train(θ)); the inner gradient is itself differentiated when
    create_graph is True (second-order MAML), treated as a constant when False."""
    inner = F.mse_loss(regressor(theta, x_train), y_train)
    grads = tg.autograd.grad(inner, theta, create_graph=create_graph)
    adapted = [p - lr_inner * g for p, g in zip(theta, grads)]
    return F.mse_loss(regressor(adapted, x_test), y_test)


def maml_step(lr_inner: float = 0.5) -> tuple[bool, str]:
    tg.manual_seed(2)
    rng = np.random.default_rng(2)
    theta = [(tg.randn(32, 1, dtype=tg.float64) * 0.8).requires_grad_(True),
             tg.zeros(32, dtype=tg.float64, requires_grad=True),
             (tg.randn(1, 32, dtype=tg.float64) * 0.3).requires_grad_(True),
             tg.zeros(1, dtype=tg.float64, requires_grad=True)]
    # one task: a sine wave of random amplitude and phase, 10 support and 10 query points
    amplitude, phase = rng.uniform(0.5, 2.0), rng.uniform(0, np.pi)
    xs = rng.uniform(-3, 3, size=(20, 1))
    ys = amplitude * np.sin(xs + phase)
    task = (tg.tensor(xs[:10]), tg.tensor(ys[:10]), tg.tensor(xs[10:]), tg.tensor(ys[10:]))

    outer = maml_outer_loss(theta, *task, lr_inner)
    outer.backward()  # through the inner SGD step
    analytic = theta[0].grad.numpy()[3, 0]
    values = []
    for sign in (1, -1):
        theta[0].data[3, 0] += sign * EPS
        values.append(maml_outer_loss(theta, *task, lr_inner, create_graph=False).item())
        theta[0].data[3, 0] -= sign * EPS
    numeric = (values[0] - values[1]) / (2 * EPS)
    (first_order,) = tg.autograd.grad(
        maml_outer_loss(theta, *task, lr_inner, create_graph=False), theta[0])
    fomaml = first_order.numpy()[3, 0]
    err = relative_error(analytic, numeric)
    line = (f"maml: d outer loss / d w1[3,0] = {analytic:.6e} through the inner step, "
            f"finite differences {numeric:.6e}, relative error {err:.1e} "
            f"(first-order MAML would give {fomaml:.6e})")
    return err < TOLERANCE, line


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], prog="higher_order.py")
    p.add_argument("--steps", type=int, default=30, help="WGAN-GP critic steps (default 30)")
    args = p.parse_args(argv)

    failures = 0
    for name, check in (("wgan-gp", lambda: wgan_gp(args.steps)),
                        ("hvp", hessian_vector_product), ("maml", maml_step)):
        try:
            ok, line = check()
        except Exception as e:  # noqa: BLE001 - report every failing check, then exit 1
            ok, line = False, f"{name}: {type(e).__name__}: {e}"
        failures += not ok
        print(line if ok else f"FAILED {line}")
    print("all checks passed" if failures == 0 else f"{failures} check(s) failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
