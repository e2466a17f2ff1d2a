"""Shared test configuration.

- Hypothesis: no deadline (the CI machine is small and shared), a modest number of
  examples per property so the whole suite stays within minutes; derandomized on CI.
  The ``standin`` profile (fewer examples) serves the stand-in pass below.
- ``device`` fixture: the device the device-aware tests run on, from ``TG_TEST_DEVICE``
  (``cpu``, the default, or ``cuda``/``cuda:N``). The tests about tensors (ops, autograd,
  nn, optimizers, models, save/load, data, instruments) take it and put their tensors on
  it; expected values stay NumPy's, so on CUDA they compare the GPU with the CPU.
- ``make test`` runs the suite twice: on the CPU, then with ``TG_TEST_DEVICE=cuda``,
  ``--device-only`` and the NumPy-backed CuPy stand-in (``tests/standin``) first on
  ``PYTHONPATH``, so host/device mixing fails without a GPU. ``--device-only`` keeps the
  tests that take ``device`` (and the ``gpu`` ones); the rest ran in the first pass.
- ``@pytest.mark.gpu``: needs a real GPU (skipped without one, and on the stand-in).
- ``@pytest.mark.cpu_only``: about the CPU alone (docs, command lines, host memory, the
  stand-in's own files); skipped when ``TG_TEST_DEVICE`` names a GPU.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, Phase, settings

import tensorgrad as tg
from tensorgrad import backend

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
# The stand-in pass looks for host/device mixing, which any example shows: fewer of them,
# and no shrinking (a failure's smallest example is the CPU pass's business; shrinking a
# slow property can take minutes).
settings.register_profile("standin", settings.get_profile("ci"), max_examples=5,
                          phases=[Phase.explicit, Phase.reuse, Phase.generate])
_default_profile = "ci" if os.environ.get("CI") else "default"
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", _default_profile))

TEST_DEVICE = os.environ.get("TG_TEST_DEVICE", "cpu")
# True when "cuda" is the NumPy-backed stand-in of tests/standin, not a GPU
STANDIN = bool(getattr(backend._cupy, "__tensorgrad_standin__", False))


def pytest_addoption(parser):
    parser.addoption("--device-only", action="store_true",
                     help="run only the device-aware tests (those taking the `device` "
                          "fixture, and the gpu ones): make test's second pass")


def pytest_configure(config):
    if TEST_DEVICE != "cpu":
        try:
            backend.parse_device(TEST_DEVICE)
        except (RuntimeError, ValueError) as e:
            raise pytest.UsageError(f"TG_TEST_DEVICE={TEST_DEVICE}: {e}") from None


@pytest.fixture(scope="session")
def device() -> str:
    """The device of the device-aware tests (session-scoped, so hypothesis tests may
    take it)."""
    return TEST_DEVICE


def pytest_collection_modifyitems(config, items):
    if not tg.cuda.is_available() or STANDIN:
        why = (f"no CUDA device: {tg.cuda.unavailable_reason()}" if not STANDIN
               else "needs a real GPU, and CUDA is the CuPy stand-in")
        skip = pytest.mark.skip(reason=why)
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)
    if TEST_DEVICE != "cpu":
        skip = pytest.mark.skip(reason=f"about the CPU alone (TG_TEST_DEVICE={TEST_DEVICE})")
        for item in items:
            if "cpu_only" in item.keywords:
                item.add_marker(skip)
    if config.getoption("--device-only"):
        kept, dropped = [], []
        for item in items:
            aware = "device" in getattr(item, "fixturenames", ()) or "gpu" in item.keywords
            (kept if aware and "cpu_only" not in item.keywords else dropped).append(item)
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = kept


@pytest.fixture(autouse=True)
def _no_gpu_check_outlives_its_test():
    """Checks kept on a GPU (backend.check_later) are read at the next transfer; one that
    a test left unread must not fail the next test instead."""
    yield
    from tensorgrad import backend

    backend._deferred.clear()
