"""nn.optim: every update rule against its formula written out here in NumPy,
param groups, validation before update, checkpoints, and a learning test."""

from __future__ import annotations

import math

import numpy as np
import pytest

import nn
import tensorgrad as tg

# ------------------------------------------------------------------ reference rules
# Each takes the parameter, its gradient and the state dict, and returns the new
# parameter, following the formulas of PyTorch's documentation (float64).


def ref_sgd(p, g, s, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
    if weight_decay:
        g = g + weight_decay * p
    if momentum:
        s["b"] = g.copy() if "b" not in s else momentum * s["b"] + (1 - dampening) * g
        g = g + momentum * s["b"] if nesterov else s["b"]
    return p - lr * g


def ref_rmsprop(p, g, s, lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                centered=False):
    if weight_decay:
        g = g + weight_decay * p
    s["v"] = alpha * s.get("v", 0.0) + (1 - alpha) * g * g
    if centered:
        s["gbar"] = alpha * s.get("gbar", 0.0) + (1 - alpha) * g
        denom = np.sqrt(s["v"] - s["gbar"] ** 2) + eps
    else:
        denom = np.sqrt(s["v"]) + eps
    if momentum > 0:
        s["b"] = momentum * s.get("b", 0.0) + g / denom
        return p - lr * s["b"]
    return p - lr * g / denom


def ref_adam(p, g, s, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False,
             decoupled=False):
    b1, b2 = betas
    s["t"] = t = s.get("t", 0) + 1
    if decoupled:
        p = p * (1 - lr * weight_decay)
    elif weight_decay:
        g = g + weight_decay * p
    s["m"] = b1 * s.get("m", 0.0) + (1 - b1) * g
    s["v"] = b2 * s.get("v", 0.0) + (1 - b2) * g * g
    if amsgrad:
        s["vmax"] = np.maximum(s.get("vmax", 0.0), s["v"])
        v = s["vmax"]
    else:
        v = s["v"]
    m_hat_step = lr / (1 - b1**t)
    denom = np.sqrt(v) / math.sqrt(1 - b2**t) + eps
    return p - m_hat_step * s["m"] / denom


def ref_adamw(p, g, s, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01, amsgrad=False):
    return ref_adam(p, g, s, lr, betas, eps, weight_decay, amsgrad, decoupled=True)


CASES = [
    (nn.optim.SGD, ref_sgd, dict(lr=0.1)),
    (nn.optim.SGD, ref_sgd, dict(lr=0.1, momentum=0.9)),
    (nn.optim.SGD, ref_sgd, dict(lr=0.05, momentum=0.9, dampening=0.3)),
    (nn.optim.SGD, ref_sgd, dict(lr=0.05, momentum=0.8, nesterov=True)),
    (nn.optim.SGD, ref_sgd, dict(lr=0.05, momentum=0.5, weight_decay=0.1, nesterov=True)),
    (nn.optim.SGD, ref_sgd, dict(lr=0.1, weight_decay=0.2)),
    (nn.optim.RMSprop, ref_rmsprop, dict()),
    (nn.optim.RMSprop, ref_rmsprop, dict(lr=0.02, alpha=0.9, weight_decay=0.1)),
    (nn.optim.RMSprop, ref_rmsprop, dict(lr=0.01, centered=True)),
    (nn.optim.RMSprop, ref_rmsprop, dict(lr=0.01, momentum=0.9)),
    (nn.optim.RMSprop, ref_rmsprop, dict(lr=0.01, momentum=0.5, centered=True, eps=1e-3)),
    (nn.optim.Adam, ref_adam, dict()),
    (nn.optim.Adam, ref_adam, dict(lr=0.05, betas=(0.8, 0.9), eps=1e-6)),
    (nn.optim.Adam, ref_adam, dict(lr=0.05, weight_decay=0.1)),
    (nn.optim.Adam, ref_adam, dict(lr=0.05, amsgrad=True)),
    (nn.optim.AdamW, ref_adamw, dict(lr=0.05)),
    (nn.optim.AdamW, ref_adamw, dict(lr=0.05, weight_decay=0.3, amsgrad=True)),
]


def case_id(case):
    cls, _, kw = case
    return cls.__name__ + "-" + "-".join(f"{k}={v}" for k, v in kw.items())


def gradient(p: np.ndarray, t: int) -> np.ndarray:
    """A gradient that depends on the parameter and the step (so errors compound)."""
    return 2.0 * (p - 1.0) * np.linspace(0.5, 2.0, p.size).reshape(p.shape) + 0.3 * np.cos(t + p)


@pytest.mark.parametrize("shape", [(3, 4), ()], ids=["matrix", "0-d"])
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_trajectory_matches_formula(case, shape, device):
    # a 0-d parameter (a temperature, a gate) is updated as any other (Adam crashed on it)
    cls, ref, kw = case
    rng = np.random.default_rng(0)
    p0 = np.asarray(rng.normal(size=shape))
    param = nn.Parameter(tg.tensor(p0, dtype=tg.float64, device=device))
    opt = cls([param], **kw)
    expected, state = p0.copy(), {}
    for t in range(8):
        g = gradient(param.numpy(), t)
        param.grad = tg.tensor(g, device=device)
        opt.step()
        expected = ref(expected, gradient(expected, t), state, **kw)
        np.testing.assert_allclose(param.numpy(), expected, rtol=1e-12, atol=1e-12,
                                   err_msg=f"step {t}")
    assert param.shape == shape


@pytest.mark.parametrize("shape", [(5,), ()], ids=["vector", "0-d"])
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_float32_stays_float32_in_place(case, shape, device):
    cls, _, kw = case
    param = nn.Parameter(tg.randn(*shape, device=device))
    data = param.data
    opt = cls([param], **kw)
    for t in range(3):
        param.grad = tg.tensor(gradient(param.numpy(), t).astype(np.float32), device=device)
        opt.step()
    assert param.dtype == np.float32 and param.shape == shape
    assert param.data is data  # updated in place: whoever holds the array sees the update
    for value in opt.state[param].values():
        if isinstance(value, tg.Tensor):
            assert value.dtype == np.float32 and value.shape == shape


def test_sgd_momentum_buffer_starts_at_first_gradient(device):
    param = nn.Parameter(tg.zeros(2, dtype=tg.float64, device=device))
    opt = nn.optim.SGD([param], lr=1.0, momentum=0.9, dampening=0.5)
    param.grad = tg.tensor([1.0, 2.0], dtype=tg.float64, device=device)
    opt.step()
    # the first step is the full gradient (no dampening, no zero-initialised buffer)
    np.testing.assert_allclose(param.numpy(), [-1.0, -2.0])
    param.grad = tg.tensor([1.0, 2.0], dtype=tg.float64, device=device)
    opt.step()  # b = 0.9·g + 0.5·g = 1.4·g
    np.testing.assert_allclose(param.numpy(), [-2.4, -4.8])


def test_adam_first_step_is_lr_times_sign(device):
    # with bias correction the first Adam step has magnitude lr (up to eps)
    param = nn.Parameter(tg.zeros(3, dtype=tg.float64, device=device))
    opt = nn.optim.Adam([param], lr=0.1)
    param.grad = tg.tensor([3.0, -0.001, 50.0], dtype=tg.float64, device=device)
    opt.step()
    np.testing.assert_allclose(param.numpy(), [-0.1, 0.1, -0.1], rtol=1e-4)


def test_adamw_decay_is_decoupled(device):
    # zero gradient: Adam with L2 still moves by lr (m ∝ λθ); AdamW only shrinks θ
    p1 = nn.Parameter(tg.ones(1, dtype=tg.float64, device=device))
    p2 = nn.Parameter(tg.ones(1, dtype=tg.float64, device=device))
    adamw = nn.optim.AdamW([p1], lr=0.1, weight_decay=0.5)
    p1.grad = tg.zeros(1, dtype=tg.float64, device=device)
    adamw.step()
    np.testing.assert_allclose(p1.numpy(), [0.95])
    adam = nn.optim.Adam([p2], lr=0.1, weight_decay=0.5)
    p2.grad = tg.zeros(1, dtype=tg.float64, device=device)
    adam.step()
    np.testing.assert_allclose(p2.numpy(), [0.9], rtol=1e-6)


def test_defaults_are_pytorchs(device):
    p = [nn.Parameter(tg.zeros(1, device=device))]
    assert {k: v for k, v in nn.optim.Adam(p).defaults.items() if k != "maximize"} == dict(
        lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False)
    assert nn.optim.AdamW(p).defaults["weight_decay"] == 0.01
    rms = nn.optim.RMSprop(p).defaults
    assert (rms["lr"], rms["alpha"], rms["eps"], rms["momentum"], rms["centered"]) == (
        0.01, 0.99, 1e-8, 0, False)
    sgd = nn.optim.SGD(p, lr=0.1).defaults
    assert (sgd["momentum"], sgd["dampening"], sgd["weight_decay"], sgd["nesterov"]) == (
        0, 0, 0, False)


# ------------------------------------------------------------------ groups & validation


def test_param_groups_have_their_own_lr_and_defaults(device):
    a, b = nn.Parameter(tg.ones(2, device=device)), nn.Parameter(tg.ones(2, device=device))
    opt = nn.optim.SGD([{"params": [a]}, {"params": b, "lr": 0.5}], lr=0.1, momentum=0.9)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
    assert all(g["momentum"] == 0.9 for g in opt.param_groups)
    assert opt.param_groups[1]["params"] == [b]
    a.grad, b.grad = tg.ones(2, device=device), tg.ones(2, device=device)
    opt.step()
    np.testing.assert_allclose(a.numpy(), [0.9, 0.9])
    np.testing.assert_allclose(b.numpy(), [0.5, 0.5])


@pytest.mark.parametrize("cls", [nn.optim.SGD, nn.optim.RMSprop, nn.optim.Adam, nn.optim.AdamW])
def test_step_bumps_the_version_of_each_updated_parameter(cls, device):
    a, b = nn.Parameter(tg.ones(3, device=device)), nn.Parameter(tg.ones((), device=device))
    idle = nn.Parameter(tg.ones(2, device=device))
    opt = cls([a, b, idle], lr=0.1)
    versions = [a._version, b._version, idle._version]
    for _ in range(2):
        a.grad, b.grad = tg.ones(3, device=device), tg.ones((), device=device)
        opt.step()
    assert [a._version, b._version] == [versions[0] + 2, versions[1] + 2]
    assert idle._version == versions[2]  # no gradient, no update, no new version


def test_a_step_between_forward_and_backward_is_detected(device):
    # the update changed values the graph saved: backward must refuse, not use them
    p = nn.Parameter(tg.tensor([1.0, 2.0, 3.0], device=device))
    opt = nn.optim.SGD([p], lr=0.1)
    loss = (p * p).sum()
    p.grad = tg.ones(3, device=device)
    opt.step()
    p.grad = None
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


def test_zero_grad_in_place_bumps_the_gradient_version(device):
    p = nn.Parameter(tg.ones(2, device=device))
    opt = nn.optim.SGD([p], lr=0.1)
    p.grad = tg.ones(2, device=device)
    grad, version = p.grad, p.grad._version
    opt.zero_grad(set_to_none=False)
    assert p.grad is grad and grad._version == version + 1
    np.testing.assert_array_equal(grad.numpy(), [0.0, 0.0])


def test_params_without_grad_are_skipped(device):
    a, b = nn.Parameter(tg.ones(2, device=device)), nn.Parameter(tg.ones(2, device=device))
    opt = nn.optim.Adam([a, b], lr=0.1, weight_decay=0.1)
    a.grad = tg.ones(2, device=device)
    opt.step()
    np.testing.assert_array_equal(b.numpy(), [1.0, 1.0])
    assert b not in opt.state and a in opt.state


@pytest.mark.parametrize("cls", [nn.optim.SGD, nn.optim.RMSprop, nn.optim.Adam, nn.optim.AdamW])
@pytest.mark.parametrize("bad", ["shape", "dtype"])
def test_failed_step_changes_nothing(cls, bad, device):
    a, b = nn.Parameter(tg.ones(3, device=device)), nn.Parameter(tg.ones(2, device=device))
    opt = cls([a, b], lr=0.1, momentum=0.9) if cls is nn.optim.SGD else cls([a, b], lr=0.1)
    a.grad = tg.ones(3, device=device)
    b.grad = tg.ones(2, device=device)
    with pytest.raises(ValueError if bad == "shape" else TypeError, match="assigned grad"):
        b.grad = (tg.ones(3, device=device) if bad == "shape"
                  else tg.ones(2, dtype=tg.float64, device=device))
    # an assignment is checked at once; a gradient array replaced behind the Tensor's
    # back is still caught by the step, before anything changes
    b.grad.data = np.ones(3, np.float32) if bad == "shape" else np.ones(2, np.float64)
    with pytest.raises(ValueError if bad == "shape" else TypeError, match="parameter 1"):
        opt.step()
    np.testing.assert_array_equal(a.numpy(), np.ones(3))  # a comes first, yet is untouched
    np.testing.assert_array_equal(b.numpy(), np.ones(2))
    assert not opt.state


@pytest.mark.parametrize("make", [
    lambda p: nn.optim.SGD(p, lr=-0.1),
    lambda p: nn.optim.SGD(p, lr=0.1, nesterov=True),
    lambda p: nn.optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True),
    lambda p: nn.optim.Adam(p, betas=(1.0, 0.999)),
    lambda p: nn.optim.Adam(p, eps=-1.0),
    lambda p: nn.optim.RMSprop(p, momentum=-0.5),
    lambda p: nn.optim.SGD([], lr=0.1),
])
def test_bad_hyperparameters_raise(make, device):
    with pytest.raises(ValueError):
        make([nn.Parameter(tg.ones(1, device=device))])


def test_duplicate_and_non_tensor_params_raise(device):
    p = nn.Parameter(tg.ones(1, device=device))
    with pytest.raises(ValueError, match="duplicate"):
        nn.optim.SGD([p, p], lr=0.1)
    with pytest.raises(ValueError, match="more than one"):
        nn.optim.SGD([{"params": [p]}, {"params": [p]}], lr=0.1)
    with pytest.raises(TypeError):
        nn.optim.SGD([np.ones(2)], lr=0.1)


def test_zero_grad(device):
    p = nn.Parameter(tg.ones(2, device=device))
    opt = nn.optim.SGD([p], lr=0.1)
    p.grad = tg.ones(2, device=device)
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(p.grad.numpy(), [0.0, 0.0])
    opt.zero_grad()
    assert p.grad is None


def test_closure_is_evaluated_and_returned(device):
    p = nn.Parameter(tg.tensor([2.0], device=device))
    opt = nn.optim.SGD([p], lr=0.25)

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert loss.item() == 4.0
    np.testing.assert_allclose(p.numpy(), [1.0])  # 2 − 0.25·(2·2)


# ------------------------------------------------------------------ checkpoints


def _model_and_data():
    tg.manual_seed(3)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    x = tg.randn(16, 4)
    y = tg.tensor(np.arange(16) % 3)
    return model, x, y


def _train(model, opt, x, y, steps):
    for _ in range(steps):
        opt.zero_grad()
        nn.CrossEntropyLoss()(model(x), y).backward()
        opt.step()


OPTIMIZERS = [
    lambda ps: nn.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
    lambda ps: nn.optim.RMSprop(ps, lr=0.01, momentum=0.5, centered=True),
    lambda ps: nn.optim.Adam(ps, lr=0.01, amsgrad=True),
    lambda ps: nn.optim.AdamW([{"params": ps[:2]}, {"params": ps[2:], "lr": 0.003}], lr=0.01),
]


@pytest.mark.parametrize("make", OPTIMIZERS, ids=["sgd", "rmsprop", "adam", "adamw-groups"])
def test_state_dict_round_trip_through_tg_save_continues_identically(make, tmp_path):
    model, x, y = _model_and_data()
    opt = make(list(model.parameters()))
    _train(model, opt, x, y, 3)
    tg.save({"model": model.state_dict(), "optim": opt.state_dict()}, tmp_path / "ckpt.npz")
    _train(model, opt, x, y, 3)  # the uninterrupted run

    resumed, _, _ = _model_and_data()
    opt2 = make(list(resumed.parameters()))
    ckpt = tg.load(tmp_path / "ckpt.npz")
    resumed.load_state_dict(ckpt["model"])
    opt2.load_state_dict(ckpt["optim"])
    _train(resumed, opt2, x, y, 3)
    for (name, a), b in zip(model.named_parameters(), resumed.parameters()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)
    assert [g["lr"] for g in opt2.param_groups] == [g["lr"] for g in opt.param_groups]


def test_state_dict_layout_is_pytorchs(device):
    a, b = nn.Parameter(tg.ones(2, device=device)), nn.Parameter(tg.ones(3, device=device))
    opt = nn.optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1, momentum=0.9)
    b.grad = tg.ones(3, device=device)
    opt.step()
    sd = opt.state_dict()
    assert [g["params"] for g in sd["param_groups"]] == [[0], [1]]
    assert list(sd["state"]) == [1]  # only b has state
    np.testing.assert_array_equal(sd["state"][1]["momentum_buffer"].numpy(), np.ones(3))
    assert sd["param_groups"][1]["lr"] == 0.5


def test_state_dict_accepts_string_keys_and_is_a_snapshot(device):
    p = nn.Parameter(tg.ones(2, device=device))
    opt = nn.optim.SGD([p], lr=0.1, momentum=0.9)
    p.grad = tg.ones(2, device=device)
    opt.step()
    sd = opt.state_dict()
    opt.step()  # the snapshot must not follow the optimizer
    np.testing.assert_array_equal(sd["state"][0]["momentum_buffer"].numpy(), [1.0, 1.0])
    sd = {"state": {"0": sd["state"][0]}, "param_groups": sd["param_groups"]}
    q = nn.Parameter(tg.ones(2, device=device))
    opt2 = nn.optim.SGD([q], lr=0.3)
    opt2.load_state_dict(sd)
    assert opt2.param_groups[0]["lr"] == 0.1 and opt2.param_groups[0]["params"] == [q]
    np.testing.assert_array_equal(opt2.state[q]["momentum_buffer"].numpy(), [1.0, 1.0])


def test_load_state_dict_mismatch_raises_and_changes_nothing(device):
    p = nn.Parameter(tg.ones(2, device=device))
    opt = nn.optim.Adam([p], lr=0.1)
    p.grad = tg.ones(2, device=device)
    opt.step()
    sd = opt.state_dict()
    q, r = nn.Parameter(tg.ones(2, device=device)), nn.Parameter(tg.ones(2, device=device))
    other = nn.optim.Adam([q, r], lr=0.5)
    with pytest.raises(ValueError, match="parameter group 0 has 1"):
        other.load_state_dict(sd)
    wrong = nn.optim.Adam([nn.Parameter(tg.ones(5, device=device))], lr=0.5)
    with pytest.raises(ValueError, match="shape"):
        wrong.load_state_dict(sd)
    assert wrong.param_groups[0]["lr"] == 0.5 and not wrong.state


# ------------------------------------------------------------------ learning


def _blob_problem():
    """4 classes: a bright 3×3 blob in one of the four quadrants of a noisy 8×8 image."""
    rng = np.random.default_rng(0)
    n = 64
    y = np.arange(n) % 4
    x = rng.normal(0, 0.3, size=(n, 1, 8, 8)).astype(np.float32)
    for i, c in enumerate(y):
        r, q = divmod(int(c), 2)
        x[i, 0, r * 4:r * 4 + 3, q * 4:q * 4 + 3] += 1.5
    return tg.tensor(x), tg.tensor(y)


def _small_convnet():
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(0.1), nn.Linear(8 * 4 * 4, 4),
    )


@pytest.mark.parametrize("make", [
    lambda ps: nn.optim.SGD(ps, lr=0.1, momentum=0.9),
    lambda ps: nn.optim.RMSprop(ps, lr=0.003),
    lambda ps: nn.optim.Adam(ps, lr=0.01),
    lambda ps: nn.optim.AdamW(ps, lr=0.01),
], ids=["sgd-momentum", "rmsprop", "adam", "adamw"])
def test_learns_a_small_conv_net(make):
    tg.manual_seed(0)
    x, y = _blob_problem()
    model = _small_convnet()
    opt = make(list(model.parameters()))
    loss_fn = nn.CrossEntropyLoss()
    with tg.no_grad():
        first = loss_fn(model.eval()(x), y).item()
    model.train()
    for _ in range(40):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
    model.eval()
    with tg.no_grad():
        logits = model(x)
        final = loss_fn(logits, y).item()
    assert first > 1.0
    assert final < 0.1, f"loss {first:.3f} -> {final:.3f}"
    assert (logits.argmax(1).numpy() == y.numpy()).mean() == 1.0


# ------------------------------------------------------------------ vs PyTorch (dev only)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_matches_torch_optim(case, device):
    torch = pytest.importorskip("torch")
    cls, _, kw = case
    p0 = np.random.default_rng(1).normal(size=(6,))
    ours = nn.Parameter(tg.tensor(p0, device=device))
    theirs = torch.nn.Parameter(torch.tensor(p0))
    opt_ours = cls([ours], **kw)
    opt_theirs = getattr(torch.optim, cls.__name__)([theirs], **kw)
    for t in range(6):
        g = gradient(p0 if t == 0 else ours.numpy(), t)
        ours.grad = tg.tensor(g, device=device)
        theirs.grad = torch.tensor(g)
        opt_ours.step()
        opt_theirs.step()
        np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_an_optimizer_takes_named_parameters(device):
    m = nn.Linear(2, 1).to(device)
    opt = nn.optim.SGD(m.named_parameters(), lr=0.5)
    assert opt.param_groups[0]["param_names"] == ["weight", "bias"]
    assert opt.param_groups[0]["params"][0] is m.weight
    before = m.bias.numpy().copy()
    m.weight.grad, m.bias.grad = tg.ones(1, 2, device=device), tg.ones(1, device=device)
    opt.step()
    np.testing.assert_allclose(m.bias.numpy(), before - 0.5, rtol=1e-6)
