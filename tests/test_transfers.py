"""A training step on the GPU makes no host<->device transfer besides the input batch
and what the user asks for (``.item()``): counted through the CuPy stand-in, so this
runs in ``make test``'s second pass (TG_TEST_DEVICE=cuda with the stand-in)."""

from __future__ import annotations

import numpy as np
import pytest

import models
import nn
import tensorgrad as tg
import tensorgrad.functional as F


@pytest.fixture
def transfers(device):
    cupy = pytest.importorskip("cupy")
    if device == "cpu" or not getattr(cupy, "__tensorgrad_standin__", False):
        pytest.skip("counts transfers through the CuPy stand-in (make test's second pass)")
    return cupy._standin.transfers


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "rmsprop"])
def test_a_training_step_moves_only_the_batch(transfers, device, optimizer):
    tg.manual_seed(0)
    model = models.resnet20(num_classes=10).to(device)
    opt = {"sgd": lambda p: nn.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=5e-4),
           "adam": lambda p: nn.optim.Adam(p, lr=1e-3),
           "rmsprop": lambda p: nn.optim.RMSprop(p, lr=1e-3)}[optimizer](model.parameters())
    rng = np.random.default_rng(0)
    x_host = rng.standard_normal((4, 3, 8, 8)).astype(np.float32)
    y_host = rng.integers(0, 10, 4)
    with transfers() as moved:
        x, y = tg.tensor(x_host, device=device), tg.tensor(y_host, device=device)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert moved.host_to_device == 2 and moved.device_to_host == 0, moved.log
    with transfers() as moved:
        value = loss.item()  # asked for: the kept checks and the value, nothing else
    assert np.isfinite(value) and moved.device_to_host <= 2, moved.log


def test_a_bad_target_on_the_gpu_is_reported_at_the_next_transfer(transfers, device):
    logits = tg.randn(3, 4, device=device)
    target = tg.tensor([0, 9, 1], device=device)
    with transfers() as moved:
        loss = F.cross_entropy(logits, target)  # no sync here
    assert moved.device_to_host == 0, moved.log
    with pytest.raises(IndexError, match="target 9 is out of bounds for 4 classes"):
        loss.item()
    assert F.cross_entropy(logits, tg.tensor([0, 3, 1], device=device)).item() > 0  # cleared
