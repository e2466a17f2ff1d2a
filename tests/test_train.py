"""examples/train.py, the main job, run for real in subprocesses at tiny settings.

What it must do (issue 6): write metrics.jsonl, curves.png, checkpoint.npz and
final.json and print ``test accuracy: 0.xxxx`` last; survive ``kill -9`` at any moment
and, resumed with ``--resume``, end with exactly the metrics of an uninterrupted run;
refuse bad arguments with one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import matplotlib
import numpy as np
import pytest

import nn
import tensorgrad as tg

matplotlib.use("Agg")

pytestmark = pytest.mark.cpu_only  # train.py in subprocesses ("cuda" below: the stand-in)

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "train.py"
# small enough for seconds per run, big enough for several batches per epoch
TINY = ["--model", "resnet20", "--limit", "320", "--batch-size", "16", "--image-size", "8",
        "--device", "cpu"]
METRIC_KEYS = {"epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "seconds"}


def command(out: Path, *args: str) -> list[str]:
    return [sys.executable, str(SCRIPT), *TINY, "--out", str(out), *args]


def env() -> dict:
    # one BLAS thread: the machine is shared, and results must not depend on scheduling
    # PYTHONPATH is kept: in make test's second pass it puts the CuPy stand-in first
    path = [p for p in (os.environ.get("PYTHONPATH"), str(ROOT)) if p]
    return {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
            "PYTHONPATH": os.pathsep.join(path)}


def train(out: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(command(out, *args), capture_output=True, text=True, env=env(),
                            cwd=ROOT, timeout=300)
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


def metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def without_time(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """One uninterrupted 3-epoch run, shared by the tests that compare against it."""
    out = tmp_path_factory.mktemp("reference")
    result = train(out, "--epochs", "3")
    (out / "stdout.txt").write_text(result.stdout)
    (out / "stderr.txt").write_text(result.stderr)
    return out


# ------------------------------------------------------------------ outputs


def test_prints_test_accuracy_last(reference):
    last = (reference / "stdout.txt").read_text().strip().splitlines()[-1]
    match = re.fullmatch(r"test accuracy: (\d\.\d{4})", last)
    assert match, last
    final = json.loads((reference / "final.json").read_text())
    assert float(match.group(1)) == pytest.approx(final["test_accuracy"], abs=5e-5)


def test_metrics_jsonl_has_one_line_per_epoch(reference):
    rows = metrics(reference)
    assert [row["epoch"] for row in rows] == [1, 2, 3]
    for row in rows:
        assert set(row) >= METRIC_KEYS
        assert 0.0 <= row["train_acc"] <= 1.0 and 0.0 <= row["test_acc"] <= 1.0
        assert np.isfinite(row["train_loss"]) and row["train_loss"] > 0
        assert np.isfinite(row["test_loss"]) and row["test_loss"] > 0
        assert row["seconds"] > 0 and row["lr"] > 0
    # cosine schedule (the default): the rate falls epoch by epoch from --lr (0.1)
    assert rows[0]["lr"] == pytest.approx(0.1)
    assert rows[0]["lr"] > rows[1]["lr"] > rows[2]["lr"]


def test_final_json_matches_last_epoch(reference):
    final = json.loads((reference / "final.json").read_text())
    last = metrics(reference)[-1]
    assert final["model"] == "resnet20" and final["dataset"] == "digits"
    assert final["epochs"] == 3
    assert final["test_accuracy"] == last["test_acc"]
    assert final["test_loss"] == last["test_loss"]
    assert final["seconds"] > 0


def test_curves_png_is_an_image(reference):
    import matplotlib.image

    raw = (reference / "curves.png").read_bytes()
    assert raw[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(reference / "curves.png")
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 200
    assert image.std() > 0.01  # something is drawn on it


def test_checkpoint_holds_everything_to_continue(reference):
    ckpt = tg.load(reference / "checkpoint.npz")
    assert ckpt["epoch"] == 3 and ckpt["model_name"] == "resnet20"
    assert ckpt["dataset"] == "digits"
    assert ckpt["best_accuracy"] == max(row["test_acc"] for row in metrics(reference))
    assert any(k.endswith("running_mean") for k in ckpt["model"])  # buffers too
    assert ckpt["optimizer"]["state"], "momentum buffers are part of the optimizer state"
    assert "last_epoch" in ckpt["scheduler"] or ckpt["scheduler"]
    assert {"tensorgrad", "loader"} <= set(ckpt["rng"])
    assert without_time(ckpt["history"]) == without_time(metrics(reference))
    assert not list(reference.glob("*.tmp*")), "temporary files left behind"


def test_progress_bar_on_stderr(reference):
    stderr = (reference / "stderr.txt").read_text()
    assert "epoch 1/3" in stderr and "img_s" in stderr and "acc=" in stderr


# -------------------------------------------------------------- kill-safety


def test_kill_9_mid_epoch_then_resume_gives_the_same_run(reference, tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen(command(out, "--epochs", "3"), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=env(), cwd=ROOT)
    # watch the progress bar; kill as soon as epoch 2 has done some but not all batches
    seen: list[bytes] = []
    reader = threading.Thread(target=lambda: seen.extend(iter(lambda: proc.stderr.read1(64),
                                                              b"")), daemon=True)
    reader.start()
    mid_epoch_2 = re.compile(rb"epoch 2/3: +\d+%\|[^|]*\| *([1-9]\d*)/(\d+)")
    try:
        deadline = time.monotonic() + 240
        while not any(int(n) < int(total) for n, total in
                      mid_epoch_2.findall(b"".join(seen))):
            assert proc.poll() is None, "training ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.005)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        reader.join(timeout=10)
    assert tg.load(out / "checkpoint.npz")["epoch"] == 1
    assert [row["epoch"] for row in metrics(out)] == [1]

    result = train(out, "--epochs", "3", "--resume")
    assert result.stdout.strip().splitlines()[-1] == \
        (reference / "stdout.txt").read_text().strip().splitlines()[-1]
    assert without_time(metrics(out)) == without_time(metrics(reference))
    final, expected = (json.loads((d / "final.json").read_text()) for d in (out, reference))
    for key in ("test_accuracy", "test_loss", "train_loss", "train_accuracy", "epochs"):
        assert final[key] == expected[key], key


def test_kill_before_first_checkpoint_then_resume_starts_over(reference, tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen(command(out, "--epochs", "3"), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env(), cwd=ROOT)
    time.sleep(0.5)  # still importing or in epoch 1
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "checkpoint.npz").exists()
    train(out, "--epochs", "3", "--resume")
    assert without_time(metrics(out)) == without_time(metrics(reference))


def test_resume_rewrites_metrics_from_the_checkpoint(reference, tmp_path):
    """A kill after the checkpoint but before (or halfway through) the metrics line, or
    stale lines from an older run: metrics.jsonl ends as the checkpoint says."""
    out = tmp_path / "run"
    out.mkdir()
    for name in ("checkpoint.npz", "metrics.jsonl"):
        (out / name).write_bytes((reference / name).read_bytes())
    lines = (out / "metrics.jsonl").read_text().splitlines()
    # the line of epoch 3 lost halfway, a stale line of a longer older run after it
    (out / "metrics.jsonl").write_text("\n".join(lines[:2]) + "\n" + lines[2][:17] + "\n"
                                       + json.dumps({"epoch": 4, "train_loss": 0.0}) + "\n")
    result = train(out, "--epochs", "3", "--resume")  # nothing left to train
    assert without_time(metrics(out)) == without_time(metrics(reference))
    assert json.loads((out / "final.json").read_text())["test_accuracy"] == \
        metrics(reference)[-1]["test_acc"]
    assert result.stdout.strip().splitlines()[-1].startswith("test accuracy: ")


def test_without_resume_a_run_starts_fresh(reference, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "metrics.jsonl").write_text(json.dumps({"epoch": 9}) + "\n")
    train(out, "--epochs", "1")
    assert [row["epoch"] for row in metrics(out)] == [1]
    assert without_time(metrics(out)) == without_time(metrics(reference)[:1])


# ------------------------------------------------------------ bad arguments


def run_main(argv, capsys) -> tuple[int, str]:
    code = import_script().main(argv)
    return code, capsys.readouterr().err


@pytest.mark.parametrize("argv, needle", [
    (["--model", "nosuchnet"], "nosuchnet"),
    (["--dataset", "imagenet"], "imagenet"),
    (["--dataset", "mnist"], "--data-dir"),
    (["--dataset", "mnist", "--data-dir", "/no/such/folder"], "/no/such/folder"),
    (["--optimizer", "lbfgs"], "lbfgs"),
    (["--scheduler", "linear"], "linear"),
    (["--epochs", "0"], "--epochs"),
    (["--epochs", "three"], "three"),
    (["--no-such-option"], "--no-such-option"),
    (["--image-size", "0"], "--image-size"),
    (["--lr", "-1"], "--lr"),
])
def test_bad_arguments_give_one_line_and_nonzero_exit(argv, needle, capsys, tmp_path):
    code, err = run_main([*argv, "--out", str(tmp_path / "run")], capsys)
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], err
    assert "Traceback" not in err


def test_empty_data_directory_names_the_missing_file(capsys, tmp_path):
    code, err = run_main(["--dataset", "mnist", "--data-dir", str(tmp_path),
                          "--out", str(tmp_path / "run")], capsys)
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "mnist" in lines[0].lower(), err


def test_checkpoint_of_another_model_is_refused(reference, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "checkpoint.npz").write_bytes((reference / "checkpoint.npz").read_bytes())
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--model", "plain20", "--limit", "32", "--epochs", "3",
         "--out", str(out), "--resume"],
        capture_output=True, text=True, env=env(), cwd=ROOT, timeout=120)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "resnet20" in lines[0] and "plain20" in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def import_script():
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import train as train_script
    finally:
        sys.path.remove(str(SCRIPT.parent))
    return train_script


def test_a_model_too_big_for_the_images_says_image_size(capsys, tmp_path):
    # GoogLeNet's five stride-2 stages shrink the 8×8 digits to nothing (as VGG's do)
    code, err = run_main(["--model", "googlenet", "--limit", "16", "--epochs", "1",
                          "--device", "cpu", "--out", str(tmp_path / "run")], capsys)
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "googlenet" in lines[0] and "8×8" in lines[0]
    assert "--image-size 32" in lines[0]  # the smallest size tried that works
    assert "Traceback" not in err
    assert not (tmp_path / "run" / "checkpoint.npz").exists()


def test_one_short_epoch_on_cuda_matches_the_cpu(tmp_path):
    """``--device cuda`` on the strict CuPy stand-in (tests/standin, first on the
    script's PYTHONPATH) trains as the CPU does: same data, same initial weights; the
    stand-in fails wherever host and device arrays would mix on a GPU."""
    short = ["--model", "resnet20", "--limit", "64", "--batch-size", "16", "--image-size", "8",
             "--epochs", "1", "--no-progress"]
    standin = {**env(), "PYTHONPATH": os.pathsep.join([str(ROOT / "tests" / "standin"),
                                                       env()["PYTHONPATH"]])}
    runs = {}
    for where, environment in (("cpu", env()), ("cuda", standin)):
        out = tmp_path / where
        result = subprocess.run([sys.executable, str(SCRIPT), *short, "--device", where,
                                 "--out", str(out)], capture_output=True, text=True,
                                env=environment, cwd=ROOT, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        assert re.fullmatch(r"test accuracy: \d\.\d{4}", result.stdout.strip().splitlines()[-1])
        (runs[where],) = metrics(out)
    for key in ("train_loss", "test_loss"):
        assert runs["cuda"][key] == pytest.approx(runs["cpu"][key], rel=1e-3), key


def test_image_size_resizes_the_batches():
    script = import_script()
    args = script.parse_args(["--limit", "8", "--image-size", "12"])
    train_set, train_transform, test_set, test_transform, channels = script.load_data(args)
    x, _ = train_set.get_batch(np.arange(4))
    for transform in (train_transform, test_transform):
        out = transform(x, generator=np.random.default_rng(0))
        assert out.shape == (4, 1, 12, 12)
    # nearest neighbour: without augmentation, output pixel (i, j) is input (i*8//12, j*8//12)
    plain = script.Resize(12)(x).numpy()
    rows = np.arange(12) * 8 // 12
    np.testing.assert_array_equal(plain, x.numpy()[:, :, rows][:, :, :, rows])


@pytest.mark.parametrize("optimizer, lr", [("sgd", 0.1), ("rmsprop", 1e-3), ("adam", 1e-3),
                                           ("adamw", 1e-3)])
def test_lr_defaults_per_optimizer(optimizer, lr):
    script = import_script()
    args = script.parse_args(["--optimizer", optimizer])
    assert args.lr == lr
    opt = script.make_optimizer(args, [nn.Parameter(tg.zeros(2))])
    assert opt.param_groups[0]["lr"] == lr
    assert script.parse_args(["--optimizer", optimizer, "--lr", "0.05"]).lr == 0.05


def test_resume_with_another_optimizer_is_one_line(reference, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "checkpoint.npz").write_bytes((reference / "checkpoint.npz").read_bytes())
    code, err = run_main([*TINY, "--epochs", "4", "--optimizer", "adam", "--resume",
                          "--out", str(out)], capsys)
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "--optimizer sgd" in lines[0] and "adam" in lines[0], err
    assert "Traceback" not in err
    assert tg.load(out / "checkpoint.npz")["epoch"] == 3  # left as it was
