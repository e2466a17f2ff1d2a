"""Shared test configuration.

- Hypothesis: no deadline (the CI machine is small and shared), a modest number of
  examples per property so the whole suite stays within minutes; derandomized on CI.
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
# CI (which sets CI=true) draws the same examples on every run, so a landing is never
# decided by luck; local runs keep exploring new examples.
settings.register_profile("ci", settings.get_profile("default"), derandomize=True,
                          database=None)
_default_profile = "ci" if os.environ.get("CI") else "default"
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", _default_profile))

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
