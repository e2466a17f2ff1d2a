"""nn.optim.lr_scheduler: learning-rate sequences against their closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nn
import tensorgrad as tg
from nn.optim import lr_scheduler


def make_optimizer(lrs=(0.1,)):
    groups = [{"params": [nn.Parameter(tg.zeros(1))], "lr": lr} for lr in lrs]
    return nn.optim.SGD(groups, lr=lrs[0], momentum=0.9)


def run(scheduler, epochs):
    """The lr of every group at epochs 0 .. epochs-1 (as a training loop sees it)."""
    seen = []
    for _ in range(epochs):
        seen.append([g["lr"] for g in scheduler.optimizer.param_groups])
        assert scheduler.get_last_lr() == seen[-1]
        scheduler.optimizer.step()
        scheduler.step()
    return seen


def test_step_lr_sequence():
    sched = lr_scheduler.StepLR(make_optimizer([1.0]), step_size=3, gamma=0.5)
    got = [lrs[0] for lrs in run(sched, 10)]
    np.testing.assert_allclose(got, [1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.125])
    assert sched.last_epoch == 10


def test_step_lr_default_gamma_and_groups():
    sched = lr_scheduler.StepLR(make_optimizer([0.1, 0.02]), step_size=2)
    got = run(sched, 5)
    np.testing.assert_allclose(got, [[0.1, 0.02], [0.1, 0.02], [0.01, 0.002], [0.01, 0.002],
                                     [0.001, 0.0002]])


def test_multistep_lr_sequence():
    sched = lr_scheduler.MultiStepLR(make_optimizer([1.0]), milestones=[5, 2], gamma=0.1)
    got = [lrs[0] for lrs in run(sched, 7)]
    np.testing.assert_allclose(got, [1, 1, 0.1, 0.1, 0.1, 0.01, 0.01])


@given(t_max=st.integers(1, 20), eta_min=st.sampled_from([0.0, 0.001, 0.05]),
       base=st.sampled_from([0.1, 1.0]))
def test_cosine_annealing_closed_form(t_max, eta_min, base):
    sched = lr_scheduler.CosineAnnealingLR(make_optimizer([base]), T_max=t_max, eta_min=eta_min)
    got = [lrs[0] for lrs in run(sched, 2 * t_max + 3)]
    want = [eta_min + (base - eta_min) * (1 + math.cos(math.pi * t / t_max)) / 2
            for t in range(2 * t_max + 3)]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    assert got[t_max] == pytest.approx(eta_min)


def test_lambda_lr_per_group():
    opt = make_optimizer([1.0, 0.5])
    sched = lr_scheduler.LambdaLR(opt, [lambda e: 0.9**e, lambda e: 1.0 / (e + 1)])
    got = run(sched, 4)
    np.testing.assert_allclose(got, [[1.0, 0.5], [0.9, 0.25], [0.81, 0.5 / 3], [0.729, 0.125]])


def test_scheduler_sets_initial_lr_and_state_round_trip(tmp_path):
    opt = make_optimizer([0.1])
    sched = lr_scheduler.CosineAnnealingLR(opt, T_max=10, eta_min=0.01)
    assert opt.param_groups[0]["initial_lr"] == 0.1
    run(sched, 4)
    tg.save({"sched": sched.state_dict(), "opt": opt.state_dict()}, tmp_path / "s.npz")
    run(sched, 3)
    lr_after = opt.param_groups[0]["lr"]

    opt2 = make_optimizer([0.1])
    sched2 = lr_scheduler.CosineAnnealingLR(opt2, T_max=99)
    ckpt = tg.load(tmp_path / "s.npz")
    opt2.load_state_dict(ckpt["opt"])
    sched2.load_state_dict(ckpt["sched"])
    assert sched2.last_epoch == 4 and sched2.T_max == 10
    run(sched2, 3)
    assert opt2.param_groups[0]["lr"] == lr_after


def test_lambda_lr_state_dict_leaves_out_functions():
    sched = lr_scheduler.LambdaLR(make_optimizer(), lambda e: 0.5**e)
    sched.step()
    sd = sched.state_dict()
    assert "lr_lambdas" not in sd and "optimizer" not in sd
    assert sd["last_epoch"] == 1
    other = lr_scheduler.LambdaLR(make_optimizer(), lambda e: 1.0)
    other.load_state_dict(sd)
    assert other.last_epoch == 1 and other.lr_lambdas[0](3) == 1.0


def test_bad_arguments_raise():
    with pytest.raises(ValueError):
        lr_scheduler.StepLR(make_optimizer(), step_size=0)
    with pytest.raises(ValueError):
        lr_scheduler.CosineAnnealingLR(make_optimizer(), T_max=0)
    with pytest.raises(ValueError):
        lr_scheduler.LambdaLR(make_optimizer([0.1, 0.2]), [lambda e: 1.0])
    with pytest.raises(TypeError):
        lr_scheduler.StepLR(object(), step_size=1)


@pytest.mark.parametrize("name, kwargs", [
    ("StepLR", dict(step_size=3, gamma=0.3)),
    ("MultiStepLR", dict(milestones=[2, 5, 6], gamma=0.5)),
    ("CosineAnnealingLR", dict(T_max=7, eta_min=0.01)),
])
def test_matches_torch(name, kwargs):
    torch = pytest.importorskip("torch")
    ours = getattr(lr_scheduler, name)(make_optimizer([0.2]), **kwargs)
    p = torch.nn.Parameter(torch.zeros(1))
    topt = torch.optim.SGD([p], lr=0.2)
    theirs = getattr(torch.optim.lr_scheduler, name)(topt, **kwargs)
    for _ in range(20):
        assert ours.get_last_lr()[0] == pytest.approx(theirs.get_last_lr()[0], rel=1e-9, abs=1e-15)
        topt.step()
        theirs.step()
        ours.step()


def test_chained_schedulers_multiply_their_factors():
    # StepLR halves at epochs 2 and 4; MultiStepLR divides by 10 at epoch 3. Chained,
    # as in PyTorch, both act on the current lr: 1, 1, 0.5, 0.05, 0.025, 0.025
    opt = make_optimizer([1.0])
    step = lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    multi = lr_scheduler.MultiStepLR(opt, milestones=[3], gamma=0.1)
    seen = []
    for _ in range(6):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        step.step()
        multi.step()
    np.testing.assert_allclose(seen, [1, 1, 0.5, 0.05, 0.025, 0.025], rtol=1e-12)


def test_a_manual_lr_change_is_kept_by_the_schedule():
    opt = make_optimizer([0.1])
    sched = lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)
    run(sched, 4)  # epochs 0..3: 0.1, 0.1, 0.1, 0.05; now at epoch 4 with lr 0.05
    opt.param_groups[0]["lr"] *= 10
    got = []
    for _ in range(3):  # epochs 4, 5 keep 0.5; epoch 6 halves it
        got.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    np.testing.assert_allclose(got, [0.5, 0.5, 0.25], rtol=1e-12)
    # the cosine schedule also moves the lr it finds rather than overwriting it
    opt = make_optimizer([1.0])
    cos = lr_scheduler.CosineAnnealingLR(opt, T_max=4)
    cos.step()  # epoch 1: (1 + cos(π/4)) / 2
    opt.param_groups[0]["lr"] = 0.5
    cos.step()  # epoch 2: times (1 + cos(π/2)) / (1 + cos(π/4))
    assert opt.param_groups[0]["lr"] == pytest.approx(0.5 / (1 + math.cos(math.pi / 4)))


def test_explicit_epoch_jumps_to_the_closed_form():
    sched = lr_scheduler.MultiStepLR(make_optimizer([1.0]), milestones=[2, 4, 4], gamma=0.5)
    sched.step(5)  # three milestones passed, 4 counted twice
    assert sched.get_last_lr() == [0.125]
    sched.step()  # epoch 6: no milestone
    assert sched.get_last_lr() == [0.125]


def test_a_group_added_later_is_scheduled_by_step_lr_and_refused_by_cosine(device):
    opt = make_optimizer([0.1])
    sched = lr_scheduler.StepLR(opt, step_size=2)
    opt.add_param_group({"params": [nn.Parameter(tg.zeros(1, device=device))], "lr": 1.0})
    sched.step()
    sched.step()
    np.testing.assert_allclose(sched.get_last_lr(), [0.01, 0.1], rtol=1e-12)
    opt = make_optimizer([0.1])
    cos = lr_scheduler.CosineAnnealingLR(opt, T_max=3)
    opt.add_param_group({"params": [nn.Parameter(tg.zeros(1, device=device))], "lr": 1.0})
    cos.step()
    cos.step()
    cos.step()  # epoch 3 = T_max: the rise back needs every group's initial lr
    with pytest.raises(ValueError, match="2 param groups"):
        cos.step()


@pytest.mark.parametrize("name, kwargs", [
    ("StepLR", dict(step_size=3, gamma=0.3)),
    ("MultiStepLR", dict(milestones=[2, 5, 5, 6], gamma=0.5)),
    ("CosineAnnealingLR", dict(T_max=4, eta_min=0.01)),
])
def test_matches_torch_when_chained_and_changed_by_hand(name, kwargs):
    torch = pytest.importorskip("torch")
    opt = make_optimizer([0.2])
    ours = [getattr(lr_scheduler, name)(opt, **kwargs), lr_scheduler.StepLR(opt, 4, 0.9)]
    p = torch.nn.Parameter(torch.zeros(1))
    topt = torch.optim.SGD([p], lr=0.2)
    theirs = [getattr(torch.optim.lr_scheduler, name)(topt, **kwargs),
              torch.optim.lr_scheduler.StepLR(topt, 4, 0.9)]
    for epoch in range(20):
        assert opt.param_groups[0]["lr"] == pytest.approx(topt.param_groups[0]["lr"],
                                                          rel=1e-9, abs=1e-15)
        if epoch == 7:
            opt.param_groups[0]["lr"] *= 3
            topt.param_groups[0]["lr"] *= 3
        topt.step()
        for s in theirs + ours:
            s.step()


# ------------------------------------------------------------------ PyTorch's other schedulers
# The expected sequences below follow PyTorch's documented recurrences (chainable forms:
# each step multiplies the current lr) and closed forms, written out here; the recurrences
# are compared exactly (the same floats as PyTorch's), the closed forms to rounding.


def lrs_of(opt):
    return [g["lr"] for g in opt.param_groups]


def test_exponential_lr_recurrence_and_closed_form():
    opt = make_optimizer([0.5, 0.03])
    sched = lr_scheduler.ExponentialLR(opt, gamma=0.7)
    got = run(sched, 8)
    want, lrs = [], [0.5, 0.03]
    for _ in range(8):
        want.append(list(lrs))
        lrs = [lr * 0.7 for lr in lrs]  # η_t = η_{t−1} · γ
    assert got == want
    np.testing.assert_allclose(got, [[0.5 * 0.7**t, 0.03 * 0.7**t] for t in range(8)],
                               rtol=1e-13)
    sched.step(3)  # an explicit epoch: the closed form η₀ · γ^3
    assert sched.get_last_lr() == [0.5 * 0.7**3, 0.03 * 0.7**3]


def linear_lr_reference(base, start, end, total, epochs):
    """PyTorch's LinearLR recurrence: η_0 = η₀·s; η_t = η_{t−1}·(1 + (e − s) /
    (T·s + (t − 1)·(e − s))) for 1 ≤ t ≤ T; unchanged after T."""
    lr, out = base * start, []
    for t in range(epochs):
        if 1 <= t <= total:
            lr = lr * (1.0 + (end - start) / (total * start + (t - 1) * (end - start)))
        out.append(lr)
    return out


@pytest.mark.parametrize("kwargs", [dict(), dict(start_factor=0.1, total_iters=4),
                                    dict(start_factor=1.0, end_factor=0.25, total_iters=3)])
def test_linear_lr_sequence(kwargs):
    start, end, total = (kwargs.get("start_factor", 1 / 3), kwargs.get("end_factor", 1.0),
                         kwargs.get("total_iters", 5))
    sched = lr_scheduler.LinearLR(make_optimizer([0.2]), **kwargs)
    got = [lrs[0] for lrs in run(sched, total + 4)]
    assert got == linear_lr_reference(0.2, start, end, total, total + 4)
    closed = [0.2 * (start + (end - start) * min(t, total) / total) for t in range(total + 4)]
    np.testing.assert_allclose(got, closed, rtol=1e-13)
    assert got[-1] == pytest.approx(0.2 * end)


def cosine_reference(base, eta_min, t_max, epochs, lr0):
    """CosineAnnealingLR's recurrence from lr0 at its epoch 0 (PyTorch's ratio form)."""
    lr, out = lr0, [lr0]
    for t in range(1, epochs):
        if (t - 1 - t_max) % (2 * t_max) == 0:
            lr = lr + (base - eta_min) * (1 - math.cos(math.pi / t_max)) / 2
        else:
            lr = ((1 + math.cos(math.pi * t / t_max)) / (1 + math.cos(math.pi * (t - 1) / t_max))
                  * (lr - eta_min) + eta_min)
        out.append(lr)
    return out


def test_sequential_lr_warmup_then_cosine():
    opt = make_optimizer([0.4])
    warmup = lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=3)
    cosine = lr_scheduler.CosineAnnealingLR(opt, T_max=6, eta_min=0.004)
    sched = lr_scheduler.SequentialLR(opt, [warmup, cosine], milestones=[3])
    assert opt.param_groups[0]["lr"] == 0.4 * 0.1  # only the warm-up's epoch 0 applies
    got = [lrs[0] for lrs in run(sched, 12)]
    # epochs 0-2: LinearLR's recurrence; from epoch 3 the cosine starts at its epoch 0
    # (closed form: the initial lr), then follows its own recurrence
    start = 0.004 + (0.4 - 0.004) * (1 + math.cos(0.0)) / 2
    want = (linear_lr_reference(0.4, 0.1, 1.0, 3, 3)
            + cosine_reference(0.4, 0.004, 6, 9, start))
    assert got == want
    closed = ([0.4 * (0.1 + 0.9 * t / 3) for t in range(3)]
              + [0.004 + (0.4 - 0.004) * (1 + math.cos(math.pi * t / 6)) / 2 for t in range(9)])
    np.testing.assert_allclose(got, closed, rtol=1e-12)
    assert sched.last_epoch == 12 and sched.get_last_lr() == lrs_of(opt)


def test_sequential_lr_three_schedulers_and_state_round_trip(tmp_path):
    def build():
        opt = make_optimizer([1.0])
        parts = [lr_scheduler.LinearLR(opt, start_factor=0.5, total_iters=2),
                 lr_scheduler.ExponentialLR(opt, gamma=0.5),
                 lr_scheduler.StepLR(opt, step_size=2, gamma=0.1)]
        return opt, lr_scheduler.SequentialLR(opt, parts, milestones=[2, 4])
    opt, sched = build()
    got = [lrs[0] for lrs in run(sched, 4)]
    # LinearLR 0.5, 0.75; ExponentialLR restarts at the initial lr 1.0, then 0.5
    assert got == [0.5, 0.5 * (1.0 + 0.5 / (2 * 0.5)), 1.0, 0.5]
    tg.save({"sched": sched.state_dict(), "opt": opt.state_dict()}, tmp_path / "s.npz")
    rest = [lrs[0] for lrs in run(sched, 4)]
    # StepLR restarts at 1.0 (epoch 4 of the sequence is its epoch 0), ×0.1 every 2 epochs
    assert rest == [1.0, 1.0, 1.0 * 0.1, 1.0 * 0.1]
    opt2, sched2 = build()
    ckpt = tg.load(tmp_path / "s.npz")
    opt2.load_state_dict(ckpt["opt"])
    sched2.load_state_dict(ckpt["sched"])
    assert [lrs[0] for lrs in run(sched2, 4)] == rest


def anneal_cos(start, end, pct):
    """OneCycleLR's cosine annealing from start (pct 0) to end (pct 1), as documented."""
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)


def anneal_linear(start, end, pct):
    return (end - start) * pct + start


def one_cycle_reference(max_lr, total, pct_start=0.3, div=25.0, final_div=1e4,
                        lo_m=0.85, hi_m=0.95, anneal=anneal_cos, three_phase=False):
    """(lr, momentum) at steps 0 .. total: the phases end at pct_start·total − 1
    (and 2·pct_start·total − 2 with three phases) and total − 1."""
    initial = max_lr / div
    low = initial / final_div
    if three_phase:
        phases = [(float(pct_start * total) - 1, initial, max_lr, hi_m, lo_m),
                  (float(2 * pct_start * total) - 2, max_lr, initial, lo_m, hi_m),
                  (total - 1, initial, low, hi_m, hi_m)]
    else:
        phases = [(float(pct_start * total) - 1, initial, max_lr, hi_m, lo_m),
                  (total - 1, max_lr, low, lo_m, hi_m)]
    out = []
    for step in range(total + 1):
        begin = 0.0
        for i, (end, lr0, lr1, m0, m1) in enumerate(phases):
            if step <= end or i == len(phases) - 1:
                pct = (step - begin) / (end - begin)
                out.append((anneal(lr0, lr1, pct), anneal(m0, m1, pct)))
                break
            begin = end
    return out


def test_one_cycle_cycles_sgd_momentum(device):
    p = nn.Parameter(tg.zeros(2, device=device))
    opt = nn.optim.SGD([p], lr=123.0)  # lr and momentum are the schedule's from now on
    sched = lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=10)
    group = opt.param_groups[0]
    assert (group["initial_lr"], group["max_lr"]) == (1.0 / 25.0, 1.0)
    assert group["min_lr"] == 1.0 / 25.0 / 1e4
    seen = []
    for _ in range(11):  # steps 0 .. total_steps
        seen.append((group["lr"], group["momentum"]))
        p.grad = tg.ones(2, device=device)
        opt.step()
        if len(seen) < 11:
            sched.step()
    assert seen == one_cycle_reference(1.0, 10)
    assert seen[0][1] == 0.95 and seen[2] == (1.0, 0.85)  # the peak: max lr, low momentum
    assert "momentum_buffer" in opt.state[p]  # SGD used the momentum it was given
    with pytest.raises(ValueError, match="Tried to step 11 times"):
        sched.step()
    assert sched.last_epoch == 10 and group["lr"] == seen[-1][0]  # the failed step changed nothing


def test_one_cycle_cycles_adam_beta1_three_phase_linear_two_groups(device):
    groups = [{"params": [nn.Parameter(tg.zeros(1, device=device))]},
              {"params": [nn.Parameter(tg.zeros(1, device=device))]}]
    opt = nn.optim.Adam(groups, betas=(0.9, 0.99))
    sched = lr_scheduler.OneCycleLR(opt, max_lr=[0.1, 0.01], epochs=4, steps_per_epoch=5,
                                    anneal_strategy="linear", three_phase=True,
                                    base_momentum=0.8, max_momentum=0.9, div_factor=10.0)
    assert sched.total_steps == 20
    seen = []
    for _ in range(21):
        seen.append([(g["lr"], g["betas"]) for g in opt.param_groups])
        opt.step()
        if len(seen) < 21:
            sched.step()
    for k, top in enumerate([0.1, 0.01]):
        want = one_cycle_reference(top, 20, div=10.0, lo_m=0.8, hi_m=0.9,
                                   anneal=anneal_linear, three_phase=True)
        assert [s[k] for s in seen] == [(lr, (m, 0.99)) for lr, m in want]  # β₂ untouched


def test_one_cycle_without_momentum_cycling_and_state_round_trip(tmp_path, device):
    opt = nn.optim.SGD([nn.Parameter(tg.zeros(1, device=device))], lr=0.1, momentum=0.5)
    sched = lr_scheduler.OneCycleLR(opt, max_lr=0.5, total_steps=12, cycle_momentum=False,
                                    pct_start=0.25)
    run(sched, 5)
    assert opt.param_groups[0]["momentum"] == 0.5
    tg.save({"sched": sched.state_dict(), "opt": opt.state_dict()}, tmp_path / "s.npz")
    rest = run(sched, 4)
    want = one_cycle_reference(0.5, 12, pct_start=0.25)
    assert [lrs[0] for lrs in rest] == [lr for lr, _ in want[5:9]]
    opt2 = nn.optim.SGD([nn.Parameter(tg.zeros(1, device=device))], lr=0.1, momentum=0.5)
    sched2 = lr_scheduler.OneCycleLR(opt2, max_lr=9.0, total_steps=99, cycle_momentum=False)
    ckpt = tg.load(tmp_path / "s.npz")
    opt2.load_state_dict(ckpt["opt"])
    sched2.load_state_dict(ckpt["sched"])
    assert run(sched2, 4) == rest


def plateau_run(sched, metrics):
    out = []
    for m in metrics:
        sched.step(m)
        out.append(sched.get_last_lr()[0])
        assert out[-1] == sched.optimizer.param_groups[0]["lr"]
    return out


def test_reduce_on_plateau_patience_and_relative_threshold():
    sched = lr_scheduler.ReduceLROnPlateau(make_optimizer([1.0]), factor=0.5, patience=2,
                                           threshold=0.1)
    # best 10; 9.5, 9.2, 9.1 are not below 10·(1 − 0.1) = 9: the third bad epoch exceeds
    # the patience → ×0.5. 8.0 improves (best 8); three more bad epochs → ×0.5 again
    got = plateau_run(sched, [10, 9.5, 9.2, 9.1, 8.0, 7.5, 7.5, 7.5])
    assert got == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.25]
    assert sched.best == 8.0 and sched.last_epoch == 8


def test_reduce_on_plateau_absolute_threshold_min_mode():
    sched = lr_scheduler.ReduceLROnPlateau(make_optimizer([1.0]), patience=0,
                                           threshold=0.5, threshold_mode="abs")
    # 9.6 is not below 10 − 0.5 (reduce); 9.4 is below 9.5 (best 9.4, no reduction)
    got = plateau_run(sched, [10, 9.6, 9.4, 9.0])
    assert got == [1.0, 0.1, 0.1, 0.1 * 0.1]


def test_reduce_on_plateau_max_mode_with_cooldown():
    sched = lr_scheduler.ReduceLROnPlateau(make_optimizer([1.0]), mode="max", patience=0,
                                           cooldown=2, threshold=0.5, threshold_mode="abs")
    # 1.2 is not above 1.0 + 0.5 → reduce, then two cooldown epochs whose bad epochs do
    # not count; the next bad epoch reduces again; 2.0 improves during the cooldown
    got = plateau_run(sched, [1.0, 1.2, 1.0, 1.0, 1.0, 2.0, 1.0, 1.0])
    assert got == [1.0, 0.1, 0.1, 0.1, 0.1 * 0.1, 0.1 * 0.1, 0.1 * 0.1, 0.1 * 0.1 * 0.1]
    # max mode, relative threshold: better means above best · (1 + threshold)
    sched = lr_scheduler.ReduceLROnPlateau(make_optimizer([1.0]), mode="max", patience=0,
                                           threshold=0.1)
    assert plateau_run(sched, [1.0, 1.05, 1.2]) == [1.0, 0.1, 0.1]


def test_reduce_on_plateau_min_lr_eps_and_tensor_metric(device):
    sched = lr_scheduler.ReduceLROnPlateau(make_optimizer([1.0, 2.0]), factor=0.5, patience=0,
                                           min_lr=[0.3, 0.0])
    for m in [5.0, 6.0, 6.0, 6.0]:
        sched.step(tg.tensor(m, device=device))  # a 0-d tensor, as a loss is
    assert sched.get_last_lr() == [0.3, 2.0 * 0.5 * 0.5 * 0.5]  # group 0 stops at its min_lr
    tiny = lr_scheduler.ReduceLROnPlateau(make_optimizer([1.5e-8]), factor=0.5, patience=0)
    plateau_run(tiny, [1.0, 2.0])  # 1.5e-8 − 0.75e-8 is below eps = 1e-8: skipped
    assert tiny.get_last_lr() == [1.5e-8]


def test_reduce_on_plateau_state_round_trip(tmp_path):
    sched = lr_scheduler.ReduceLROnPlateau(make_optimizer([1.0]), patience=1, cooldown=1)
    plateau_run(sched, [3.0, 3.0])
    tg.save(sched.state_dict(), tmp_path / "p.npz")
    rest = plateau_run(sched, [3.0, 3.0, 3.0, 2.0, 3.0, 3.0])
    other = lr_scheduler.ReduceLROnPlateau(make_optimizer([1.0]), mode="max")
    other.load_state_dict(tg.load(tmp_path / "p.npz"))
    assert other.mode == "min" and other.best == 3.0 and other.num_bad_epochs == 1
    assert plateau_run(other, [3.0, 3.0, 3.0, 2.0, 3.0, 3.0]) == rest
    fresh = lr_scheduler.ReduceLROnPlateau(make_optimizer([1.0]))
    tg.save(fresh.state_dict(), tmp_path / "f.npz")  # best = inf before the first metric
    assert tg.load(tmp_path / "f.npz")["best"] == math.inf


def warm_restarts_reference(base, eta_min, t_0, t_mult, epochs):
    """SGDR's closed form: walk the periods T_0, T_0·T_mult, ... to find T_cur and T_i."""
    out = []
    for epoch in range(epochs):
        t_cur, t_i = epoch, t_0
        while t_cur >= t_i:
            t_cur -= t_i
            t_i *= t_mult
        out.append(eta_min + (base - eta_min) * (1 + math.cos(math.pi * t_cur / t_i)) / 2)
    return out


@pytest.mark.parametrize("t_0, t_mult", [(2, 2), (3, 1), (1, 3)])
def test_cosine_warm_restarts_sequence(t_0, t_mult):
    sched = lr_scheduler.CosineAnnealingWarmRestarts(make_optimizer([1.0]), T_0=t_0,
                                                     T_mult=t_mult, eta_min=0.01)
    got = [lrs[0] for lrs in run(sched, 16)]
    assert got == warm_restarts_reference(1.0, 0.01, t_0, t_mult, 16)


def test_cosine_warm_restarts_fractional_epochs_and_restarts_with_t_mult_2():
    sched = lr_scheduler.CosineAnnealingWarmRestarts(make_optimizer([1.0]), T_0=2, T_mult=2)
    got = [lrs[0] for lrs in run(sched, 15)]
    assert [t for t in range(15) if got[t] == 1.0] == [0, 2, 6, 14]  # periods 2, 4, 8
    sched.step(5.5)  # periods [0, 2), [2, 6): T_cur = 3.5 of T_i = 4
    assert sched.T_cur == 3.5 and sched.T_i == 4 and sched.last_epoch == 5
    assert sched.get_last_lr()[0] == pytest.approx((1 + math.cos(math.pi * 3.5 / 4)) / 2,
                                                   rel=1e-12)
    sched.step()  # continues from epoch 5: T_cur 4.5 ≥ 4 restarts with T_i = 8
    assert sched.T_cur == pytest.approx(0.5) and sched.T_i == 8
    sched.step(1)
    assert (sched.T_cur, sched.T_i) == (1, 2)


def test_cosine_warm_restarts_state_round_trip(tmp_path):
    opt = make_optimizer([0.3])
    sched = lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=2, T_mult=2, eta_min=0.001)
    run(sched, 5)
    tg.save({"sched": sched.state_dict(), "opt": opt.state_dict()}, tmp_path / "w.npz")
    rest = run(sched, 6)
    opt2 = make_optimizer([0.3])
    sched2 = lr_scheduler.CosineAnnealingWarmRestarts(opt2, T_0=7)
    ckpt = tg.load(tmp_path / "w.npz")
    opt2.load_state_dict(ckpt["opt"])
    sched2.load_state_dict(ckpt["sched"])
    assert run(sched2, 6) == rest


class _PlainOptimizer(nn.optim.Optimizer):
    """An optimizer with neither momentum nor betas (OneCycleLR cannot cycle it)."""

    def __init__(self, params, lr=0.1):
        super().__init__(params, dict(lr=lr))


@pytest.mark.parametrize("make, match", [
    (lambda o: lr_scheduler.LinearLR(o, start_factor=0), "start_factor"),
    (lambda o: lr_scheduler.LinearLR(o, start_factor=1.5), "start_factor"),
    (lambda o: lr_scheduler.LinearLR(o, end_factor=-0.1), "end_factor"),
    (lambda o: lr_scheduler.SequentialLR(o, [], milestones=[]), "at least one"),
    (lambda o: lr_scheduler.SequentialLR(o, [lr_scheduler.ExponentialLR(o, 0.9)],
                                         milestones=[3]), "milestone"),
    (lambda o: lr_scheduler.SequentialLR(o, [lr_scheduler.ExponentialLR(make_optimizer(), 0.9)],
                                         milestones=[]), "same optimizer"),
    (lambda o: lr_scheduler.SequentialLR(o, [lr_scheduler.ExponentialLR(o, 0.9),
                                             lr_scheduler.ReduceLROnPlateau(o)],
                                         milestones=[2]), "ReduceLROnPlateau"),
    (lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.1), "total_steps"),
    (lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=0), "total_steps"),
    (lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.1, epochs=2, steps_per_epoch=0),
     "steps_per_epoch"),
    (lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=10, pct_start=1.5),
     "pct_start"),
    (lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=10, pct_start=0),
     "pct_start"),  # an int, refused as PyTorch does
    (lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=10, anneal_strategy="exp"),
     "anneal_strategy"),
    (lambda o: lr_scheduler.OneCycleLR(o, max_lr=[0.1, 0.2], total_steps=10), "max_lr"),
    (lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=10, pct_start=0.1),
     "phase 1"),  # a first phase of no steps (PyTorch: ZeroDivisionError)
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, factor=1.0), "Factor"),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, mode="maximum"), "mode"),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, threshold_mode="relative"), "threshold mode"),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, min_lr=[0.1, 0.2]), "min_lrs"),
    (lambda o: lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=0), "T_0"),
    (lambda o: lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=2.5), "T_0"),
    (lambda o: lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=2, T_mult=0), "T_mult"),
    (lambda o: lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=2, T_mult=1.5), "T_mult"),
    (lambda o: lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=2, eta_min="0"), "eta_min"),
    (lambda o: lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=2).step(-1), "epoch"),
])
def test_new_schedulers_bad_arguments_raise_value_error(make, match):
    opt = make_optimizer([0.1])
    with pytest.raises(ValueError, match=match):
        make(opt)


def test_one_cycle_refuses_an_optimizer_without_momentum_before_changing_it(device):
    opt = _PlainOptimizer([nn.Parameter(tg.zeros(1, device=device))])
    with pytest.raises(ValueError, match="momentum or beta1"):
        lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=10)
    assert opt.param_groups[0].keys() == {"params", "lr"}  # untouched
    sched = lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=10, cycle_momentum=False)
    assert sched.get_last_lr() == [anneal_cos(1.0 / 25.0, 1.0, 0.0)]
    for make in (lambda: lr_scheduler.ReduceLROnPlateau(object()),
                 lambda: lr_scheduler.OneCycleLR(object(), max_lr=1.0, total_steps=3),
                 lambda: lr_scheduler.ExponentialLR(object(), 0.5)):
        with pytest.raises(TypeError, match="not an Optimizer"):
            make()
