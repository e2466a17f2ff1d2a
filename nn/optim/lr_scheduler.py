"""Learning-rate schedules: set each param group's ``lr`` as a function of the epoch.

Call ``scheduler.step()`` once per epoch (OneCycleLR: once per batch), after
``optimizer.step()``. Creating a scheduler applies epoch 0. Started alone, each
schedule follows its closed form (η₀ = a group's initial lr, t = ``last_epoch``):

    StepLR             η = η₀ · γ^⌊t / step_size⌋
    MultiStepLR        η = η₀ · γ^(number of milestones ≤ t)
    ExponentialLR      η = η₀ · γ^t
    LinearLR           η = η₀ · (s + (e − s) · min(t, T) / T)        (s, e: start/end factor)
    CosineAnnealingLR  η = η_min + (η₀ − η_min) · (1 + cos(π t / T_max)) / 2
    LambdaLR           η = η₀ · λ(t)

but, as PyTorch's, StepLR, MultiStepLR, ExponentialLR, LinearLR and CosineAnnealingLR
are *chainable*: a step does not write the closed form, it moves the group's current
lr by the factor that takes the closed form from t − 1 to t (γ at a step or milestone,
the ratio of two cosine values or of two linear factors). So two schedulers on one
optimizer compose (their factors multiply), an lr changed by hand keeps its change,
and a param group added later is scheduled too. ``step(epoch)`` with an explicit epoch
jumps to the closed form instead. The recursive and the closed form agree only up to
rounding; each scheduler here does PyTorch's arithmetic in PyTorch's order, so the
sequences are the same floats.

The others write their own value each step:

    SequentialLR                 one scheduler after another, switching at milestones
                                 (warm-up: LinearLR, then CosineAnnealingLR)
    OneCycleLR                   up from max_lr/div_factor to max_lr, then down to
                                 initial/final_div_factor (cos or linear), per batch;
                                 cycles momentum (SGD, RMSprop) or Adam's β₁ inversely
    CosineAnnealingWarmRestarts  the cosine of SGDR, restarted after T_0, T_0·T_mult, ...
    ReduceLROnPlateau            lr × factor when ``step(metric)`` stops improving
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence
from typing import Any

from .optimizer import Optimizer


class LRScheduler:
    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(f"param 'initial_lr' is not specified in param_groups[{i}] "
                                   "when resuming an optimizer")
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._initial_step()

    def _initial_step(self) -> None:
        """Apply epoch 0 (creating a scheduler does this; so does SequentialLR for its
        first scheduler). ``_is_initial`` tells chainable rules not to move the lr."""
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def get_lr(self) -> list[float]:
        """The learning rate of every group after a step to ``self.last_epoch``."""
        raise NotImplementedError

    def _get_closed_form_lr(self) -> list[float]:
        """The learning rate of every group at ``self.last_epoch``, from ``base_lrs``."""
        return self.get_lr()

    def get_last_lr(self) -> list[float]:
        return list(self._last_lr)

    def _current_lrs(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]

    def step(self, epoch: int | None = None) -> None:
        self._step_count += 1
        try:
            self._update_lr(epoch)
        except Exception:
            self._step_count -= 1  # a failed step changes nothing
            raise

    def _update_lr(self, epoch: int | None = None) -> None:
        """Move to the next epoch (chainable rule) or to ``epoch`` (closed form) and
        write the learning rates into the param groups."""
        previous = self.last_epoch
        self.last_epoch = previous + 1 if epoch is None else epoch
        try:
            lrs = self.get_lr() if epoch is None else self._get_closed_form_lr()
            groups = self.optimizer.param_groups
            if len(lrs) != len(groups):
                raise ValueError(
                    f"{type(self).__name__}: the optimizer has {len(groups)} param groups but "
                    f"the scheduler knows the initial lr of {len(self.base_lrs)} (a group "
                    f"added after the scheduler was created has none)")
        except Exception:
            self.last_epoch = previous
            raise
        for group, lr in zip(groups, lrs):
            group["lr"] = lr
        self._last_lr = self._current_lrs()

    def state_dict(self) -> dict[str, Any]:
        """Everything but the optimizer (numbers and lists: safe for ``tg.save``)."""
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.__dict__.update(state_dict)


class StepLR(LRScheduler):
    """Multiply the lr by ``gamma`` every ``step_size`` epochs."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1,
                 last_epoch: int = -1):
        if step_size <= 0:
            raise ValueError(f"step_size must be a positive int, got {step_size}")
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0 or self.last_epoch % self.step_size:
            return self._current_lrs()
        return [lr * self.gamma for lr in self._current_lrs()]

    def _get_closed_form_lr(self) -> list[float]:
        return [base * self.gamma ** (self.last_epoch // self.step_size) for base in self.base_lrs]


class MultiStepLR(LRScheduler):
    """Multiply the lr by ``gamma`` at each epoch listed in ``milestones``."""

    def __init__(self, optimizer: Optimizer, milestones: Sequence[int], gamma: float = 0.1,
                 last_epoch: int = -1):
        self.milestones = sorted(int(m) for m in milestones)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        hits = self.milestones.count(self.last_epoch)  # a repeated milestone counts twice
        return [lr * self.gamma**hits for lr in self._current_lrs()]

    def _get_closed_form_lr(self) -> list[float]:
        passed = sum(m <= self.last_epoch for m in self.milestones)
        return [base * self.gamma**passed for base in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """Half a cosine from the initial lr down to ``eta_min`` over ``T_max`` epochs
    (SGDR without restarts); past T_max it rises again, as PyTorch's."""

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0,  # noqa: N803
                 last_epoch: int = -1):
        if T_max <= 0:
            raise ValueError(f"T_max must be a positive int, got {T_max}")
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        t, t_max, eta_min = self.last_epoch, self.T_max, self.eta_min
        if self._is_initial:
            return self._current_lrs()
        if self._step_count == 1 and t > 0:  # as PyTorch: restarting at a later epoch
            return self._get_closed_form_lr()
        if (t - 1 - t_max) % (2 * t_max) == 0:
            # leaving the minimum, where the ratio below would divide by 1 + cos(π) = 0
            rise = (1 - math.cos(math.pi / t_max)) / 2
            return [lr + (base - eta_min) * rise
                    for lr, base in zip(self._current_lrs(), self.base_lrs)]
        ratio = (1 + math.cos(math.pi * t / t_max)) / (1 + math.cos(math.pi * (t - 1) / t_max))
        return [eta_min + (lr - eta_min) * ratio for lr in self._current_lrs()]

    def _get_closed_form_lr(self) -> list[float]:
        cos = (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
        return [self.eta_min + (base - self.eta_min) * cos for base in self.base_lrs]


class LambdaLR(LRScheduler):
    """lr = initial lr × ``lr_lambda(epoch)`` (one function, or one per group).
    The functions are not part of ``state_dict`` (code is not data)."""

    def __init__(self, optimizer: Optimizer, lr_lambda: Callable[[int], float] | Sequence,
                 last_epoch: int = -1):
        n = len(optimizer.param_groups)
        if isinstance(lr_lambda, (list, tuple)):
            if len(lr_lambda) != n:
                raise ValueError(f"expected {n} lr_lambdas, but got {len(lr_lambda)}")
            self.lr_lambdas = list(lr_lambda)
        else:
            self.lr_lambdas = [lr_lambda] * n
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return [base * fn(self.last_epoch) for base, fn in zip(self.base_lrs, self.lr_lambdas)]

    def state_dict(self) -> dict[str, Any]:
        return {k: v for k, v in super().state_dict().items() if k != "lr_lambdas"}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict({k: v for k, v in state_dict.items() if k != "lr_lambdas"})



class ExponentialLR(LRScheduler):
    """Multiply the lr by ``gamma`` every epoch."""

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1):
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self._is_initial:  # (also when resuming: do not move one epoch ahead)
            return self._current_lrs()
        return [lr * self.gamma for lr in self._current_lrs()]

    def _get_closed_form_lr(self) -> list[float]:
        return [base * self.gamma**self.last_epoch for base in self.base_lrs]


class LinearLR(LRScheduler):
    """Scale the initial lr by a factor that goes linearly from ``start_factor`` (epoch
    0) to ``end_factor`` (epoch ``total_iters`` and after): the usual warm-up."""

    def __init__(self, optimizer: Optimizer, start_factor: float = 1.0 / 3,
                 end_factor: float = 1.0, total_iters: int = 5, last_epoch: int = -1):
        if not 0 < start_factor <= 1:
            raise ValueError(f"start_factor must be in (0, 1], got {start_factor}")
        if not 0 <= end_factor <= 1:
            raise ValueError(f"end_factor must be in [0, 1], got {end_factor}")
        self.start_factor = start_factor
        self.end_factor = end_factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        start, end = self.start_factor, self.end_factor
        if self.last_epoch == 0:
            return [lr * start for lr in self._current_lrs()]
        if self._is_initial or self.last_epoch > self.total_iters:
            return self._current_lrs()
        # factor(t) / factor(t − 1), written as PyTorch writes it (same rounding)
        ratio = 1.0 + (end - start) / (self.total_iters * start
                                       + (self.last_epoch - 1) * (end - start))
        return [lr * ratio for lr in self._current_lrs()]

    def _get_closed_form_lr(self) -> list[float]:
        start, end = self.start_factor, self.end_factor
        return [base * (start + (end - start) * min(self.total_iters, self.last_epoch)
                        / self.total_iters)
                for base in self.base_lrs]


class SequentialLR(LRScheduler):
    """Run ``schedulers`` one after another: ``schedulers[i]`` from epoch
    ``milestones[i-1]`` on, restarted there at its own epoch 0 (closed form). All must
    drive ``optimizer``. The schedulers are created first (each applies its epoch 0);
    SequentialLR undoes that and starts the first one again::

        warmup = LinearLR(opt, start_factor=0.1, total_iters=5)
        cosine = CosineAnnealingLR(opt, T_max=95)
        sched = SequentialLR(opt, [warmup, cosine], milestones=[5])
    """

    def __init__(self, optimizer: Optimizer, schedulers: Sequence[LRScheduler],
                 milestones: Sequence[int], last_epoch: int = -1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        if len(schedulers) < 1:
            raise ValueError("SequentialLR expects at least one scheduler, but got none")
        for i, scheduler in enumerate(schedulers):
            if not hasattr(scheduler, "optimizer"):
                raise TypeError(f"SequentialLR: the scheduler at index {i} "
                                f"({type(scheduler).__name__}) has no optimizer")
            if isinstance(scheduler, ReduceLROnPlateau):
                raise ValueError(f"SequentialLR does not support ReduceLROnPlateau (its step "
                                 f"needs a metric), but got one at index {i}")
            if scheduler.optimizer is not optimizer:
                raise ValueError(f"SequentialLR expects all schedulers to belong to the same "
                                 f"optimizer, but the {type(scheduler).__name__} at index {i} "
                                 f"has another one")
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(f"SequentialLR expects one milestone fewer than schedulers, but "
                             f"got {len(schedulers)} schedulers and {len(milestones)} "
                             f"milestones")
        self._schedulers = list(schedulers)
        self._milestones = list(milestones)
        self.last_epoch = last_epoch + 1
        self.optimizer = optimizer
        for group in optimizer.param_groups:  # undo the epoch 0 each scheduler applied ...
            group["lr"] = group["initial_lr"]
        self._recursive_undo()
        self._schedulers[0]._initial_step()  # ... and apply the first one's only
        self._last_lr = self._schedulers[0].get_last_lr()

    def _recursive_undo(self, scheduler: Any = None) -> None:
        scheduler = self if scheduler is None else scheduler
        if hasattr(scheduler, "_schedulers"):
            for inner in scheduler._schedulers:
                self._recursive_undo(inner)
        elif hasattr(scheduler, "last_epoch"):
            scheduler.last_epoch -= 1

    def step(self) -> None:  # type: ignore[override]
        self.last_epoch += 1
        idx = bisect.bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[idx]
        if idx > 0 and self._milestones[idx - 1] == self.last_epoch:
            scheduler._update_lr(0)  # the next scheduler starts at its epoch 0
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()

    def state_dict(self) -> dict[str, Any]:
        state = {k: v for k, v in super().state_dict().items() if k != "_schedulers"}
        state["_schedulers"] = [s.state_dict() for s in self._schedulers]
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        inner = state_dict["_schedulers"]
        if len(inner) != len(self._schedulers):
            raise ValueError(f"loaded state has {len(inner)} schedulers but this "
                             f"SequentialLR has {len(self._schedulers)}")
        super().load_state_dict({k: v for k, v in state_dict.items() if k != "_schedulers"})
        for scheduler, state in zip(self._schedulers, inner):
            scheduler.load_state_dict(state)


class CosineAnnealingWarmRestarts(LRScheduler):
    """SGDR: η = η_min + (η₀ − η_min) · (1 + cos(π T_cur / T_i)) / 2, where T_cur counts
    the epochs since the last restart and the i-th period lasts T_i = T_0 · T_mult^i.
    ``step(epoch)`` takes fractional epochs (``epoch + batch / batches``)."""

    def __init__(self, optimizer: Optimizer, T_0: int, T_mult: int = 1,  # noqa: N803
                 eta_min: float = 0.0, last_epoch: int = -1):
        if not isinstance(T_0, int) or T_0 <= 0:
            raise ValueError(f"Expected positive integer T_0, but got {T_0}")
        if not isinstance(T_mult, int) or T_mult < 1:
            raise ValueError(f"Expected integer T_mult >= 1, but got {T_mult}")
        if not isinstance(eta_min, (float, int)):
            raise ValueError(f"Expected float or int eta_min, but got {eta_min!r}")
        self.T_0 = T_0
        self.T_i = T_0
        self.T_mult = T_mult
        self.eta_min = eta_min
        self.T_cur = last_epoch
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        eta_min = self.eta_min
        return [eta_min + (base - eta_min) * (1 + math.cos(math.pi * self.T_cur / self.T_i)) / 2
                for base in self.base_lrs]

    def step(self, epoch: float | None = None) -> None:
        if epoch is None and self.last_epoch < 0:
            epoch = 0
        if epoch is None:
            epoch = self.last_epoch + 1
            self.T_cur = self.T_cur + 1
            if self.T_cur >= self.T_i:  # a restart
                self.T_cur = self.T_cur % self.T_i
                self.T_i = self.T_i * self.T_mult
        else:
            if epoch < 0:
                raise ValueError(f"Expected non-negative epoch, but got {epoch}")
            if epoch >= self.T_0:
                if self.T_mult == 1:
                    self.T_cur = epoch % self.T_0
                else:  # which period epoch falls in: T_0 (T_mult^n − 1)/(T_mult − 1) ≤ epoch
                    n = int(math.log((epoch / self.T_0 * (self.T_mult - 1) + 1), self.T_mult))
                    self.T_cur = epoch - self.T_0 * (self.T_mult**n - 1) / (self.T_mult - 1)
                    self.T_i = self.T_0 * self.T_mult ** (n)
            else:
                self.T_i = self.T_0
                self.T_cur = epoch
        self.last_epoch = math.floor(epoch)
        for group, lr in zip(self.optimizer.param_groups, self.get_lr()):
            group["lr"] = lr
        self._last_lr = self._current_lrs()


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith 2018, fastai's two phases by default), stepped once
    per *batch* for ``total_steps`` (or ``epochs · steps_per_epoch``) steps:

        phase 1, steps 0 .. pct_start·total − 1:  lr  max_lr/div_factor → max_lr
        phase 2, up to step total − 1:            lr  max_lr → initial_lr/final_div_factor

    each an annealing (``'cos'``: end + (start − end)/2 · (1 + cos(π·pct)), or
    ``'linear'``); with ``three_phase`` the lr first returns to the initial lr
    symmetrically, then falls to the minimum. With ``cycle_momentum`` the optimizer's
    momentum (SGD, RMSprop) or β₁ (Adam) moves inversely, max_momentum → base_momentum →
    max_momentum. Not chainable: it writes its value every step.
    """

    def __init__(self, optimizer: Optimizer, max_lr: float | Sequence[float],
                 total_steps: int | None = None, epochs: int | None = None,
                 steps_per_epoch: int | None = None, pct_start: float = 0.3,
                 anneal_strategy: str = "cos", cycle_momentum: bool = True,
                 base_momentum: float | Sequence[float] = 0.85,
                 max_momentum: float | Sequence[float] = 0.95, div_factor: float = 25.0,
                 final_div_factor: float = 1e4, three_phase: bool = False,
                 last_epoch: int = -1):
        # everything is checked before the optimizer's groups are touched
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        if total_steps is not None:
            if not isinstance(total_steps, int) or total_steps <= 0:
                raise ValueError(f"Expected positive integer total_steps, but got {total_steps}")
            self.total_steps = total_steps
        elif epochs is not None and steps_per_epoch is not None:
            if not isinstance(epochs, int) or epochs <= 0:
                raise ValueError(f"Expected positive integer epochs, but got {epochs}")
            if not isinstance(steps_per_epoch, int) or steps_per_epoch <= 0:
                raise ValueError(f"Expected positive integer steps_per_epoch, but got "
                                 f"{steps_per_epoch}")
            self.total_steps = epochs * steps_per_epoch
        else:
            raise ValueError("You must define either total_steps OR (epochs AND steps_per_epoch)")
        if not isinstance(pct_start, float) or not 0 <= pct_start <= 1:
            raise ValueError(f"Expected float between 0 and 1 pct_start, but got {pct_start}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"anneal_strategy must be one of 'cos' or 'linear', instead got "
                             f"{anneal_strategy}")
        if cycle_momentum and not ("momentum" in optimizer.defaults
                                   or "betas" in optimizer.defaults):
            raise ValueError("optimizer must support momentum or beta1 with `cycle_momentum` "
                             "option enabled")
        max_lrs = _per_group("max_lr", optimizer, max_lr)
        if cycle_momentum:
            max_momentums = _per_group("max_momentum", optimizer, max_momentum)
            base_momentums = _per_group("base_momentum", optimizer, base_momentum)

        total = self.total_steps
        if three_phase:
            self._schedule_phases = [
                _phase(float(pct_start * total) - 1, "initial_lr", "max_lr",
                       "max_momentum", "base_momentum"),
                _phase(float(2 * pct_start * total) - 2, "max_lr", "initial_lr",
                       "base_momentum", "max_momentum"),
                _phase(total - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum"),
            ]
        else:
            self._schedule_phases = [
                _phase(float(pct_start * total) - 1, "initial_lr", "max_lr",
                       "max_momentum", "base_momentum"),
                _phase(total - 1, "max_lr", "min_lr", "base_momentum", "max_momentum"),
            ]
        self._anneal_func_type = anneal_strategy
        self.optimizer = optimizer
        # the schedule's constants live in the param groups (and so in the optimizer's
        # state_dict), as PyTorch's
        if last_epoch == -1:
            for group, top in zip(optimizer.param_groups, max_lrs):
                group["initial_lr"] = top / div_factor
                group["max_lr"] = top
                group["min_lr"] = group["initial_lr"] / final_div_factor
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            self.use_beta1 = "betas" in optimizer.defaults
            if last_epoch == -1:
                for high, low, group in zip(max_momentums, base_momentums,
                                            optimizer.param_groups):
                    self._set_momentum(group, high)
                    group["max_momentum"] = high
                    group["base_momentum"] = low
        super().__init__(optimizer, last_epoch)

    @staticmethod
    def _annealing_cos(start: float, end: float, pct: float) -> float:
        """Cosine from ``start`` to ``end`` as pct goes from 0 to 1."""
        cos_out = math.cos(math.pi * pct) + 1
        return end + (start - end) / 2.0 * cos_out

    @staticmethod
    def _annealing_linear(start: float, end: float, pct: float) -> float:
        return (end - start) * pct + start

    def _set_momentum(self, group: dict, value: float) -> None:
        if self.use_beta1:
            group["betas"] = (value, *group["betas"][1:])
        else:
            group["momentum"] = value

    def get_lr(self) -> list[float]:
        step = self.last_epoch
        if step > self.total_steps:
            raise ValueError(f"Tried to step {step} times. The specified number of total "
                             f"steps is {self.total_steps}")
        anneal = (self._annealing_cos if self._anneal_func_type == "cos"
                  else self._annealing_linear)
        # find the phase (and the fraction of it done) first: it is the same for every group
        start_step = 0.0
        last = len(self._schedule_phases) - 1
        for i, phase in enumerate(self._schedule_phases):
            end_step = phase["end_step"]
            if step <= end_step or i == last:
                if end_step == start_step:  # (PyTorch divides by zero here)
                    raise ValueError(
                        f"OneCycleLR: phase {i + 1} of the schedule has no steps (it starts "
                        f"and ends at step {end_step}); choose pct_start and total_steps="
                        f"{self.total_steps} so that every phase has at least one step")
                pct = (step - start_step) / (end_step - start_step)
                break
            start_step = phase["end_step"]
        lrs = []
        for group in self.optimizer.param_groups:
            lrs.append(anneal(group[phase["start_lr"]], group[phase["end_lr"]], pct))
            if self.cycle_momentum:
                self._set_momentum(group, anneal(group[phase["start_momentum"]],
                                                 group[phase["end_momentum"]], pct))
        return lrs


class ReduceLROnPlateau(LRScheduler):
    """Multiply the lr by ``factor`` once the metric given to ``step(metric)`` has not
    improved for more than ``patience`` epochs; then wait ``cooldown`` epochs before
    counting again. "Improved" means, for the best value so far b:

        mode='min', threshold_mode='rel':  metric < b · (1 − threshold)
        mode='min', threshold_mode='abs':  metric < b − threshold
        mode='max':                        metric > b · (1 + threshold)  or  > b + threshold

    The lr never goes below ``min_lr`` (one value or one per group), and a reduction
    smaller than ``eps`` is skipped.
    """

    def __init__(self, optimizer: Optimizer, mode: str = "min", factor: float = 0.1,
                 patience: int = 10, threshold: float = 1e-4, threshold_mode: str = "rel",
                 cooldown: int = 0, min_lr: float | Sequence[float] = 0, eps: float = 1e-8):
        if factor >= 1.0:
            raise ValueError(f"Factor should be < 1.0, got {factor}")
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        if isinstance(min_lr, (list, tuple)):
            if len(min_lr) != len(optimizer.param_groups):
                raise ValueError(f"expected {len(optimizer.param_groups)} min_lrs, "
                                 f"got {len(min_lr)}")
            self.default_min_lr = None
            self.min_lrs = list(min_lr)
        else:
            self.default_min_lr = min_lr
            self.min_lrs = [min_lr] * len(optimizer.param_groups)
        self._init_is_better(mode=mode, threshold=threshold, threshold_mode=threshold_mode)
        self.factor = factor
        self.optimizer = optimizer
        self.patience = patience
        self.cooldown = cooldown
        self.eps = eps
        self.last_epoch = 0
        self._last_lr = self._current_lrs()
        self._reset()

    def _reset(self) -> None:
        self.best = self.mode_worse
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    def step(self, metrics: Any, epoch: int | None = None) -> None:  # type: ignore[override]
        current = float(metrics)  # a Python number or a one-element tensor
        self.last_epoch = self.last_epoch + 1 if epoch is None else epoch
        if self._is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs in the cooldown do not count
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = self._current_lrs()

    def _reduce_lr(self) -> None:
        groups = self.optimizer.param_groups
        if len(groups) != len(self.min_lrs):
            if self.default_min_lr is None:
                raise RuntimeError(
                    f"ReduceLROnPlateau: the optimizer has {len(groups)} param groups but "
                    f"min_lr has {len(self.min_lrs)} values (a group was added later); set "
                    f"the scheduler's min_lrs to one value per group")
            self.min_lrs = [self.default_min_lr] * len(groups)
        for group, min_lr in zip(groups, self.min_lrs):
            old_lr = float(group["lr"])
            new_lr = max(old_lr * self.factor, min_lr)
            if old_lr - new_lr > self.eps:
                group["lr"] = new_lr

    @property
    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def _is_better(self, a: float, best: float) -> bool:
        if self.mode == "min" and self.threshold_mode == "rel":
            return a < best * (1.0 - self.threshold)
        if self.mode == "min":
            return a < best - self.threshold
        if self.threshold_mode == "rel":
            return a > best * (self.threshold + 1.0)
        return a > best + self.threshold

    def _init_is_better(self, mode: str, threshold: float, threshold_mode: str) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"mode {mode!r} is unknown (expected 'min' or 'max')")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"threshold mode {threshold_mode!r} is unknown "
                             "(expected 'rel' or 'abs')")
        self.mode_worse = math.inf if mode == "min" else -math.inf
        self.mode = mode
        self.threshold = threshold
        self.threshold_mode = threshold_mode

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self._init_is_better(mode=self.mode, threshold=self.threshold,
                             threshold_mode=self.threshold_mode)


def _per_group(name: str, optimizer: Optimizer, value: Any) -> list:
    """``value`` for every param group: a list or tuple with one per group, or one value."""
    n = len(optimizer.param_groups)
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"{name} must have one value per param group: got {len(value)} "
                             f"values for {n} groups")
        return list(value)
    return [value] * n


def _phase(end_step: float, start_lr: str, end_lr: str, start_momentum: str,
           end_momentum: str) -> dict[str, Any]:
    """One OneCycleLR phase: where it ends and which group entries it anneals between."""
    return {"end_step": end_step, "start_lr": start_lr, "end_lr": end_lr,
            "start_momentum": start_momentum, "end_momentum": end_momentum}


_LRScheduler = LRScheduler  # PyTorch's old name

__all__ = ["CosineAnnealingLR", "CosineAnnealingWarmRestarts", "ExponentialLR", "LRScheduler",
           "LambdaLR", "LinearLR", "MultiStepLR", "OneCycleLR", "ReduceLROnPlateau",
           "SequentialLR", "StepLR"]
