"""``make gpu-check``, checked on a machine without a GPU: it says so in one line and
exits 0; its CPU dry run of the benchmarks works; its report parsers read what pytest
and the kernel tests write. (On a GPU machine the script itself is the check.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import tensorgrad as tg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import gpu_check  # noqa: E402

pytestmark = pytest.mark.cpu_only  # no device: compilers, files, fakes


def _env() -> dict[str, str]:
    """This environment with the checkout alone on PYTHONPATH (never the CuPy stand-in,
    which would look like a GPU)."""
    env = {k: v for k, v in os.environ.items() if k not in ("OUT", "PART")}
    env["PYTHONPATH"] = str(ROOT)
    return env


@pytest.mark.skipif(tg.cuda.is_available(), reason="needs a machine without a GPU")
def test_without_a_gpu_make_gpu_check_says_so_in_one_line(tmp_path):
    out = tmp_path / "out"
    done = subprocess.run(["make", "-s", "gpu-check", f"GPU_PYTHON={sys.executable}",
                           f"OUT={out}"], cwd=ROOT, env=_env(), capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpu-check: no usable GPU here (")
    assert tg.cuda.unavailable_reason() in lines[0]
    assert not out.exists()  # nothing written


def test_the_dry_run_of_the_benchmarks_works_on_the_cpu(tmp_path):
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "benchmarks/gpu_check.py", "--dry-run", "--quick",
                           "--part", "bench", "--out", str(out)], cwd=ROOT, env=_env(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    files = sorted(p.name for p in out.iterdir())
    assert files == ["bench.md", "summary.md"]
    summary = (out / "summary.md").read_text()
    assert "(dry run on the CPU" in summary and "bench exit 0" in summary
    assert "Traceback" not in summary
    bench = (out / "bench.md").read_text()
    assert bench in summary  # the summary carries the tables
    rows = [line for line in bench.splitlines() if line.startswith("| ")]
    assert any(r.startswith("| conv2d tiny 3x3 8@8² b2 | ") for r in rows)
    for model, batch, precision in (("CIFAR ResNet-20", 2, "float32"),
                                    ("CIFAR ResNet-20", 2, "tf32")):
        row = next(r for r in rows if r.startswith(f"| {model} | {batch} | {precision} |"))
        tg_ms = float(row.split("|")[5])
        assert tg_ms > 0
    try:
        import torch  # noqa: F401
    except ImportError:
        assert "PyTorch is not installed: the tensorgrad side alone." in bench
    else:
        assert "first step agrees" in bench  # ResNet-20: the same step as PyTorch's


def test_parse_junit_counts_and_failures(tmp_path):
    xml = tmp_path / "r.xml"
    xml.write_text(
        '<?xml version="1.0"?><testsuites><testsuite name="pytest" tests="5" failures="1" '
        'errors="1" skipped="1">'
        '<testcase classname="tests.test_a" name="test_ok"/>'
        '<testcase classname="tests.test_a" name="test_ok2"/>'
        '<testcase classname="tests.test_a" name="test_bad">'
        '<failure message="assert 1 == 2&#10;more">trace</failure></testcase>'
        '<testcase classname="tests.test_b" name="test_err"><error message="boom"/></testcase>'
        '<testcase classname="tests.test_b" name="test_skip"><skipped/></testcase>'
        '</testsuite></testsuites>')
    r = gpu_check.parse_junit(xml)
    assert (r["tests"], r["passed"], r["failed"], r["errors"], r["skipped"]) == (5, 2, 1, 1, 1)
    assert r["failures"] == [("tests.test_a::test_bad", "assert 1 == 2"),
                             ("tests.test_b::test_err", "boom")]
    assert [o for _, o in r["cases"]] == ["passed", "passed", "failed", "error", "skipped"]


def test_the_standin_rules_are_read_from_the_suite(tmp_path):
    run = gpu_check.Run.__new__(gpu_check.Run)
    run.out, run.dry = tmp_path, False
    cases = [("tests.test_cupy_standin::test_rule[standin]", "passed"),
             ("tests.test_cupy_standin::test_rule[cupy]", "passed"),
             ("tests.test_cupy_standin::test_other[cupy]", "failed"),
             ("tests.test_ops::test_add[cupy]", "failed")]
    r = run.standin_rules(cases)
    assert (r["passed"], r["failed"], r["skipped"]) == (1, 1, 0)
    assert r["failures"] == [("tests.test_cupy_standin::test_other[cupy]", "")]


def test_parse_pytest_log_reads_the_closing_line_and_failed_lines(tmp_path):
    log = tmp_path / "p.log"
    log.write_text("FAILED tests/test_x.py::test_y - AssertionError: no\n"
                   "FAILED tests/test_x.py::test_z\n"
                   "===== 2 failed, 40 passed, 3 skipped, 1 error in 9.1s =====\n")
    r = gpu_check.parse_pytest_log(log)
    assert (r["passed"], r["failed"], r["skipped"], r["errors"]) == (40, 2, 3, 1)
    assert r["failures"] == [("tests/test_x.py::test_y", "AssertionError: no"),
                             ("tests/test_x.py::test_z", "")]


def test_kernel_differences_round_trip(tmp_path, monkeypatch):
    from tensorgrad import kernels

    path = tmp_path / "diffs.jsonl"
    kernels.report_difference("im2col", "odd", 1e-3)  # no TG_KERNEL_DIFFS: nothing
    assert not path.exists()
    monkeypatch.setenv("TG_KERNEL_DIFFS", str(path))
    kernels.report_difference("im2col", "small", 2e-7)
    kernels.report_difference("im2col", "big", 5e-6)
    kernels.report_difference("max_pool2d", "ceil", 0.0)
    assert [json.loads(line)["kernel"] for line in path.read_text().splitlines()] == \
        ["im2col", "im2col", "max_pool2d"]
    assert gpu_check.largest_diffs(path) == [("im2col", 5e-6, "big"),
                                             ("max_pool2d", 0.0, "ceil")]


def test_each_part_gets_its_budget_and_leaves_the_later_parts_theirs(tmp_path):
    run = gpu_check.Run.__new__(gpu_check.Run)  # no environment probe: only the clock
    run.parts, run.start = list(gpu_check.PARTS), 0.0
    budgets = gpu_check.BUDGET_S
    assert sum(budgets.values()) <= gpu_check.TOTAL_S <= 300
    import time

    run.start = time.perf_counter()
    assert run.budget("suite") == pytest.approx(budgets["suite"], abs=1)
    run.start = time.perf_counter() - 200  # the suite overran: bench and train shrink
    assert run.budget("bench") == pytest.approx(gpu_check.TOTAL_S - 200 - budgets["train"],
                                                abs=1)
    run.parts = ["bench"]  # one part alone gets the whole run
    run.start = time.perf_counter()
    assert run.budget("bench") == pytest.approx(gpu_check.TOTAL_S, abs=1)
