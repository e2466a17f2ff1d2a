"""Smoke tests of the lecture's demonstrations in examples/, at tiny settings.

Each test checks what the script produces — the PNG is a real image, the JSON and the
printed numbers parse and make sense — not only that it runs.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import matplotlib
import numpy as np
import pytest

import tensorgrad as tg

pytestmark = pytest.mark.cpu_only  # the scripts on the CPU (train.py on a device: test_train)

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def load(name: str):
    """Import examples/<name>.py as a module (examples/ is not a package)."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def assert_png(path: Path, min_size: tuple[int, int] = (200, 300)) -> None:
    import matplotlib.image

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] >= min_size[0] and image.shape[1] >= min_size[1]
    assert image.std() > 0.01  # not a blank canvas


# ------------------------------------------------------------------- custom_op


def test_custom_op_reports_every_check(capsys):
    code = load("custom_op").main(["--examples", "8"])
    out = capsys.readouterr().out.splitlines()
    assert code == 0, out
    assert out[-1] == "all checks passed"
    assert out[0].startswith("gradcheck float64") and out[0].endswith("passed")
    assert out[1].startswith("broken backward caught:") and "analytic" in out[1]
    assert out[2].startswith("gradgradcheck SmoothSwish") and "passed" in out[2]
    assert float(re.search(r"closed form max error (\S+)", out[2]).group(1)) < 1e-12
    assert out[3].startswith("once_differentiable Swish:")
    assert "second derivative raises:" in out[3] and "@once_differentiable: Swish" in out[3]
    properties = [line for line in out if line.startswith("property")]
    assert len(properties) == 6
    for line in properties:
        assert int(re.search(r"(\d+) examples passed", line).group(1)) >= 1, line
    errors = re.search(r"max value error (\S+), max gradient error (\S+)", "\n".join(out))
    assert float(errors.group(1)) < 1e-12 and float(errors.group(2)) < 1e-12
    lowest = float(re.search(r"lowest value seen (\S+)", "\n".join(out)).group(1))
    assert -0.2785 <= lowest <= 0.0


def test_custom_op_swish_values_and_gradient():
    swish = load("custom_op").swish
    x = tg.tensor(np.array([-30.0, -1.0, 0.0, 2.0, 30.0]), requires_grad=True)
    y = swish(x)
    y.sum().backward()
    s = 1 / (1 + np.exp(-x.numpy()))  # fine in float64 at ±30
    np.testing.assert_allclose(y.numpy(), x.numpy() * s, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(x.grad.numpy(), s * (1 + x.numpy() * (1 - s)), rtol=1e-12)
    with pytest.raises(TypeError, match="floating-point"):
        swish(tg.tensor(np.arange(3)))


def test_custom_op_smooth_swish_second_derivative_is_the_closed_form():
    module = load("custom_op")
    x = tg.tensor(np.array([-6.0, -1.2785, 0.0, 0.5, 3.0]), requires_grad=True)
    (g,) = tg.autograd.grad(module.smooth_swish(x).sum(), x, create_graph=True)
    (h,) = tg.autograd.grad(g.sum(), x)
    s = 1 / (1 + np.exp(-x.numpy()))
    np.testing.assert_allclose(g.numpy(), s * (1 + x.numpy() * (1 - s)), rtol=1e-12)
    # d²/dx² x·σ(x) = σ(1 − σ)(2 + x(1 − 2σ)); at 0 it is 1/2 (the kink of |x| is avoided)
    np.testing.assert_allclose(h.numpy(), s * (1 - s) * (2 + x.numpy() * (1 - 2 * s)),
                               rtol=1e-10)
    assert h.numpy()[2] == pytest.approx(0.5)


def test_custom_op_once_differentiable_swish_refuses_a_second_derivative():
    module = load("custom_op")
    x = tg.tensor(np.array([-1.0, 2.0]), requires_grad=True)
    (g,) = tg.autograd.grad(module.swish(x).sum(), x, create_graph=True)
    s = 1 / (1 + np.exp(-x.numpy()))
    np.testing.assert_allclose(g.numpy(), s * (1 + x.numpy() * (1 - s)), rtol=1e-12)
    with pytest.raises(RuntimeError, match="once_differentiable: Swish"):
        tg.autograd.grad(g.sum(), x)


def test_custom_op_failing_check_exits_nonzero(monkeypatch, capsys):
    module = load("custom_op")
    monkeypatch.setattr(module.Swish, "backward", module.BrokenSwish.backward)
    assert module.main(["--examples", "5"]) == 1
    out = capsys.readouterr().out
    assert "FAILED check_gradcheck" in out and out.strip().endswith("check(s) failed")


def test_custom_op_runs_as_a_script():
    result = subprocess.run([sys.executable, str(EXAMPLES / "custom_op.py"), "--examples", "3"],
                            capture_output=True, text=True, cwd=ROOT, timeout=120,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "all checks passed"


# ---------------------------------------------------------------- higher_order

HIGHER_ORDER = {
    "wgan-gp": r"wgan-gp: d penalty / d conv1\.weight\[2,0,1,1\] = (\S+), finite differences "
               r"(\S+), relative error (\S+); penalty (\S+) -> (\S+), mean \|grad_x D\| "
               r"(\S+) -> (\S+) \(toward 1\)",
    "hvp": r"hvp: .* vs finite differences of the gradient: max relative error (\S+)",
    "maml": r"maml: d outer loss / d w1\[3,0\] = (\S+) through the inner step, finite "
            r"differences (\S+), relative error (\S+) \(first-order MAML would give (\S+)\)",
}


def test_higher_order_reports_every_check(capsys):
    code = load("higher_order").main([])
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.strip().splitlines()[-1] == "all checks passed"
    found = {name: re.search(pattern, out) for name, pattern in HIGHER_ORDER.items()}
    assert all(found.values()), (found, out)
    # WGAN-GP: the penalty's gradient w.r.t. a weight (a double backward through two
    # convolutions) is what finite differences of the penalty give, and training
    # lowered the penalty and moved the mean input-gradient norm toward 1
    analytic, numeric, err, p0, p1, n0, n1 = map(float, found["wgan-gp"].groups())
    assert analytic != 0 and analytic == pytest.approx(numeric, rel=1e-6) and err < 1e-6
    assert p1 < p0 and abs(n1 - 1) < abs(n0 - 1)
    assert float(found["hvp"].group(1)) < 1e-6
    # MAML: the gradient through the inner step matches finite differences, and the
    # second-order term matters here (first-order MAML is visibly different)
    analytic, numeric, err, fomaml = map(float, found["maml"].groups())
    assert analytic == pytest.approx(numeric, rel=1e-6) and err < 1e-6
    assert abs(fomaml - analytic) > 0.1 * abs(analytic)


def test_higher_order_catches_a_missing_second_order_term(monkeypatch, capsys):
    # an inner step without create_graph treats the inner gradient as a constant:
    # first-order MAML, which finite differences of the true outer loss reject
    module = load("higher_order")
    outer = module.maml_outer_loss
    monkeypatch.setattr(module, "maml_outer_loss",
                        lambda *args, create_graph=True: outer(*args, create_graph=False))
    assert module.main(["--steps", "2"]) == 1
    out = capsys.readouterr().out
    assert "FAILED maml:" in out and "FAILED hvp" not in out


# ------------------------------------------------------------------ optimizers


def test_optimizers_writes_loss_curves(tmp_path, capsys):
    out = tmp_path / "optimizers.png"
    code = load("optimizers").main(["--epochs", "2", "--limit", "64", "--batch-size", "16",
                                    "--out", str(out)])
    assert code == 0
    assert_png(out)
    saved = json.loads(out.with_suffix(".json").read_text())
    names = ["SGD", "SGD+Momentum", "RMSprop", "Adam"]
    assert list(saved["losses"]) == names
    for name in names:
        losses = saved["losses"][name]
        assert len(losses) == 2 * 64 // 16  # one loss per iteration
        assert all(math.isfinite(v) and v > 0 for v in losses)
    # all four start from the same weights on the same first batch
    first = [saved["losses"][name][0] for name in names]
    assert max(first) - min(first) < 1e-6
    lines = capsys.readouterr().out.splitlines()
    for name in names:
        line = next(line for line in lines if line.startswith(name + " "))
        loss, acc = map(float, re.search(r"final loss (\S+)\s+test accuracy (\S+)",
                                         line).groups())
        assert loss == pytest.approx(saved["results"][name]["final_loss"], abs=1e-4)
        assert 0.0 <= acc <= 1.0
    assert lines[-1] == f"wrote {out}"


def test_optimizers_smooth_is_a_moving_average():
    smooth = load("optimizers").smooth
    np.testing.assert_allclose(smooth([1.0, 3.0, 5.0, 7.0], window=2), [1.0, 2.0, 4.0, 6.0])


# ------------------------------------------------------------ plain vs residual


def test_plain_vs_residual_writes_error_curves(tmp_path, capsys):
    out = tmp_path / "degradation.png"
    code = load("plain_vs_residual").main(["--depths", "20", "32", "--epochs", "2",
                                           "--limit", "48", "--batch-size", "16",
                                           "--out", str(out)])
    assert code == 0
    assert_png(out)
    saved = json.loads(out.with_suffix(".json").read_text())
    assert set(saved) == {"plain20", "plain32", "resnet20", "resnet32"}
    for curves in saved.values():
        assert len(curves["train_error"]) == len(curves["test_error"]) == 2
        assert all(0.0 <= e <= 1.0 for e in curves["train_error"] + curves["test_error"])
    lines = capsys.readouterr().out.splitlines()
    for name, curves in saved.items():
        line = next(line for line in lines if line.startswith(name + " "))
        train, test = map(float, re.search(r"train error\s+(\S+)%\s+test error\s+(\S+)%",
                                           line).groups())
        assert train == pytest.approx(100 * curves["train_error"][-1], abs=0.01)
        assert test == pytest.approx(100 * curves["test_error"][-1], abs=0.01)


def test_plain_vs_residual_rejects_unknown_depth(capsys):
    with pytest.raises(SystemExit) as info:
        load("plain_vs_residual").main(["--depths", "20", "21"])
    assert info.value.code != 0
    assert "21" in capsys.readouterr().err
