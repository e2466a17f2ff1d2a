"""tg.profiler.profile: every forward and backward call is counted, timed and traced."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tensorgrad as tg
from tensorgrad import autograd


def _run(n_mul: int, n_exp: int, device: str = "cpu"):
    """n_mul Muls and n_exp Exps on a (4, 3) float32 tensor, one Sum, then backward."""
    x = tg.rand(4, 3, requires_grad=True, device=device)  # in [0, 1): nothing overflows
    y = x
    for _ in range(n_mul):
        y = y * x
    for _ in range(n_exp):
        y = (y * 0.01).exp()
    y.sum().backward()


@given(n_mul=st.integers(0, 5), n_exp=st.integers(1, 4))
def test_counts_equal_the_calls_made(n_mul, n_exp):
    with tg.profiler.profile() as prof:
        _run(n_mul, n_exp)
    totals = prof.totals()
    assert totals["Exp"].forward_calls == totals["Exp"].backward_calls == n_exp
    assert totals["Mul"].forward_calls == totals["Mul"].backward_calls == n_mul + n_exp
    assert totals["Sum"].forward_calls == totals["Sum"].backward_calls == 1
    assert set(totals) == {"Mul", "Exp", "Sum"}  # creating x (randn) is no op
    assert len(prof.events) == 2 * (2 * n_exp + n_mul + 1)


def test_bytes_are_the_outputs_nbytes(device):
    a = tg.ones(8, 16, requires_grad=True, device=device)  # float32: 512 bytes
    b = tg.ones(16, 2, requires_grad=True, device=device)
    with tg.profiler.profile() as prof:
        out = a @ b  # (8, 2) float32: 64 bytes
        out.backward(tg.ones(8, 2, device=device))  # grads of a and b: 512 + 128 bytes
    fwd, bwd = prof.events
    assert (fwd.name, fwd.phase, fwd.nbytes) == ("MatMul", "forward", 64)
    assert (bwd.name, bwd.phase, bwd.nbytes) == ("MatMul", "backward", 512 + 128)
    assert prof.totals()["MatMul"].nbytes == 64 + 640


def test_times_are_plausible():
    with tg.profiler.profile() as prof:
        _run(3, 2)
    for e in prof.events:
        assert e.duration >= 0 and e.start >= 0
    fwd_end = max(e.start + e.duration for e in prof.events if e.phase == "forward")
    bwd_start = min(e.start for e in prof.events if e.phase == "backward")
    assert fwd_end <= bwd_start  # the whole forward ran before backward began
    t = prof.totals()["Exp"]
    assert t.total_time == pytest.approx(t.forward_time + t.backward_time)
    assert t.forward_time == pytest.approx(
        sum(e.duration for e in prof.events if e.name == "Exp" and e.phase == "forward"))


def test_no_grad_ops_have_no_backward(device):
    x = tg.randn(3, device=device)
    with tg.profiler.profile() as prof, tg.no_grad():
        (x * 2).exp()
    assert prof.totals()["Exp"].forward_calls == 1
    assert prof.totals()["Exp"].backward_calls == 0


def test_chrome_trace_has_one_complete_event_per_call(tmp_path):
    with tg.profiler.profile() as prof:
        _run(2, 3)
    path = tmp_path / "trace.json"
    prof.export_chrome_trace(path)
    trace = json.loads(path.read_text())
    events = trace["traceEvents"]
    assert len(events) == len(prof.events) == 2 * (2 * 3 + 2 + 1)
    for ev in events:
        assert ev["ph"] == "X"
        assert {"name", "ts", "dur", "pid", "tid", "cat"} <= set(ev)
        assert ev["cat"] in ("forward", "backward")
        assert ev["dur"] >= 0
    n_fwd = sum(ev["cat"] == "forward" for ev in events)
    assert n_fwd == sum(ev["cat"] == "backward" for ev in events) == 2 * 3 + 2 + 1
    assert sorted(ev["name"] for ev in events if ev["cat"] == "forward") == sorted(
        ["Mul"] * 5 + ["Exp"] * 3 + ["Sum"])


def _table_rows(table: str) -> list[list[str]]:
    lines = table.splitlines()
    assert lines[0].split()[:2] == ["op", "fwd"]
    return [ln.split() for ln in lines[2:] if not set(ln) <= {"-"}]


def test_table_is_sorted_by_total_time_and_lists_every_op(device):
    with tg.profiler.profile() as prof:
        x = tg.randn(64, 64, requires_grad=True, device=device)
        for _ in range(5):
            x = (x @ x).tanh()  # MatMul dominates
        x.sum().backward()
    rows = _table_rows(prof.table())
    assert sorted(r[0] for r in rows) == ["MatMul", "Sum", "Tanh"]
    totals_ms = [float(r[5]) for r in rows]
    assert totals_ms == sorted(totals_ms, reverse=True)
    by_name = {r[0]: r for r in rows}
    assert by_name["MatMul"][1] == by_name["MatMul"][3] == "5"  # fwd and bwd calls
    assert by_name["Sum"][1] == "1"


def test_observer_is_removed_even_on_error(device):
    before = list(autograd.observers)
    with pytest.raises(ValueError), tg.profiler.profile():
        raise ValueError("boom")
    assert autograd.observers == before
    with tg.profiler.profile() as prof:
        pass
    tg.ones(2, requires_grad=True, device=device).exp()  # outside: not recorded
    assert prof.events == []


def test_nested_profiles_both_record(device):
    x = tg.randn(3, requires_grad=True, device=device)
    with tg.profiler.profile() as outer:
        x.exp()
        with tg.profiler.profile() as inner:
            x.tanh()
        x.sigmoid()
    assert [e.name for e in outer.events] == ["Exp", "Tanh", "Sigmoid"]
    assert [e.name for e in inner.events] == ["Tanh"]


def test_bytes_in_table_are_human_readable(device):
    with tg.profiler.profile() as prof:
        tg.ones(1024, 1024, requires_grad=True, device=device).exp()  # 4 MiB of float32 output
    assert re.search(r"Exp .* 4\.0 MB$", prof.table().splitlines()[2])


@pytest.mark.gpu
def test_cuda_ops_are_timed_after_synchronisation():
    with tg.profiler.profile() as prof:
        _run(2, 1, device="cuda")
    assert prof.totals()["Mul"].forward_calls == 3
    assert all(np.isfinite(e.duration) and e.duration >= 0 for e in prof.events)
