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


def test_a_group_added_later_is_scheduled_by_step_lr_and_refused_by_cosine():
    opt = make_optimizer([0.1])
    sched = lr_scheduler.StepLR(opt, step_size=2)
    opt.add_param_group({"params": [nn.Parameter(tg.zeros(1))], "lr": 1.0})
    sched.step()
    sched.step()
    np.testing.assert_allclose(sched.get_last_lr(), [0.01, 0.1], rtol=1e-12)
    opt = make_optimizer([0.1])
    cos = lr_scheduler.CosineAnnealingLR(opt, T_max=3)
    opt.add_param_group({"params": [nn.Parameter(tg.zeros(1))], "lr": 1.0})
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
