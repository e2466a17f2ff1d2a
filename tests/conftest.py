"""Shared test configuration.

- Hypothesis: no deadline (the CI machine is small and shared), a modest number of
  examples per property so the whole suite stays within minutes.
- ``device`` fixture: the device tests run on. ``TG_TEST_DEVICE=cuda make test`` runs
  the device-aware tests on a GPU; the default is the CPU.
- ``@pytest.mark.gpu`` tests are skipped when no CUDA device is usable.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

import tensorgrad as tg

settings.register_profile(
    "default",
    deadline=None,
    max_examples=25,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

TEST_DEVICE = os.environ.get("TG_TEST_DEVICE", "cpu")


@pytest.fixture
def device() -> str:
    return TEST_DEVICE


def pytest_collection_modifyitems(config, items):
    if tg.cuda.is_available():
        return
    skip = pytest.mark.skip(reason=f"no CUDA device: {tg.cuda.unavailable_reason()}")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
