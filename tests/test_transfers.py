"""A training step on the GPU makes no host<->device transfer besides the input batch
and what the user asks for (``.item()``): counted through the CuPy stand-in
(tests/standin), in a subprocess that has it first on its path as ``cupy``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.cpu_only  # its own subprocess plays the GPU

ROOT = Path(__file__).resolve().parents[1]

STEP = r"""
import json, sys
import numpy as np
import cupy
import models, nn
import tensorgrad as tg
import tensorgrad.functional as F

assert cupy.__tensorgrad_standin__
transfers = cupy._standin.transfers
report = {}
for name in ("sgd", "adam", "rmsprop"):
    tg.manual_seed(0)
    model = models.resnet20(num_classes=10).to("cuda")
    opt = {"sgd": lambda p: nn.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=5e-4),
           "adam": lambda p: nn.optim.Adam(p, lr=1e-3),
           "rmsprop": lambda p: nn.optim.RMSprop(p, lr=1e-3)}[name](model.parameters())
    rng = np.random.default_rng(0)
    x_host = rng.standard_normal((4, 3, 8, 8)).astype(np.float32)
    y_host = rng.integers(0, 10, 4)
    with transfers() as step:
        x, y = tg.tensor(x_host, device="cuda"), tg.tensor(y_host, device="cuda")
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with transfers() as asked:
        value = loss.item()
    report[name] = [step.host_to_device, step.device_to_host, asked.device_to_host,
                    bool(np.isfinite(value)), [w for _, _, w in step.log]]

logits = tg.randn(3, 4, device="cuda")
with transfers() as bad_step:
    loss = F.cross_entropy(logits, tg.tensor([0, 9, 1], device="cuda"))  # no sync here
try:
    loss.item()
    raised = None
except IndexError as e:
    raised = str(e)
good = F.cross_entropy(logits, tg.tensor([0, 3, 1], device="cuda")).item()
report["bad target"] = [bad_step.device_to_host, raised, good > 0]
print(json.dumps(report))
"""


@pytest.fixture(scope="module")
def report() -> dict:
    path = os.pathsep.join([str(ROOT / "tests" / "standin"), str(ROOT)])
    env = {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", STEP], capture_output=True, text=True,
                            env=env, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "rmsprop"])
def test_a_training_step_moves_only_the_batch(report, optimizer):
    host_to_device, device_to_host, asked, finite, log = report[optimizer]
    assert host_to_device == 2 and device_to_host == 0, log  # x and y in, nothing out
    assert finite and asked <= 2  # .item(): the kept checks and the value, nothing else


def test_a_bad_target_on_the_gpu_is_reported_at_the_next_transfer(report):
    device_to_host, raised, later_ok = report["bad target"]
    assert device_to_host == 0  # the loss itself waited for nothing
    assert raised is not None and "target 9 is out of bounds for 4 classes" in raised
    assert later_ok  # the failed check was read once, not raised again
