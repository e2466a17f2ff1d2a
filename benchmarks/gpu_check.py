"""``make gpu-check``: the one prepared run that proves and times the GPU path.

    make gpu-check [PART=all|suite|bench|train] [OUT=gpu-check]
    python3 benchmarks/gpu_check.py [--part PART] [--out DIR] [--dry-run]

Made for a GPU machine that is lent for minutes, starts bare and installs nothing: it
runs with that machine's ``python3`` and the checkout on ``PYTHONPATH`` (no venv), and
finishes within 5 minutes. Each part writes its files into OUT as soon as it has them
and ``summary.md`` (read it first) is rewritten after every part, so a run cut short
still leaves what it learnt. The parts, in order:

1. ``suite``: the whole test suite with CUDA as the test device (``TG_TEST_DEVICE=cuda``,
   ``pytest -n 8``, hypothesis's derandomized ``ci`` profile): counts, failures, and the
   largest kernel-vs-generic differences the ``gpu`` tests report (``suite.xml``,
   ``suite.log``, ``kernel_diffs.jsonl``), and how the CuPy stand-in's accept/refuse
   rules fared against the real CuPy (``tests/test_cupy_standin.py``'s ``[cupy]`` cases;
   rerun alone into ``standin.log`` if the suite was stopped before them).
2. ``bench``: tensorgrad against PyTorch on the same GPU, in the same process, as
   ratios (``bench.md``): the ``bench_ops`` rows, a CIFAR ResNet-20 training step at
   batch 128, and a ResNet-50 training step at batch 64 and 128 (224²) in float32 and
   with TF32 on both sides, with each side's peak GPU memory.
3. ``train``: ``examples/train.py --device cuda`` on its default data: accuracy and time
   (``train.log``).

Each part has a time budget (seconds: suite 150, bench 85, train 50; ``PART=`` one part
gives it the whole 290) and is stopped there with what it has. Without a usable GPU the
script says so in one line and exits 0. ``--dry-run`` runs every part on the CPU with
tiny sizes (a few test files, small batches, one short epoch; the PyTorch side only when
PyTorch is installed), so that the first run on a GPU is not the script's first run;
``--dry-run --quick`` leaves ResNet-50 out (``make test`` runs that).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("suite", "bench", "train")
BUDGET_S = {"suite": 150, "bench": 85, "train": 50}  # 285 s: the 5 minutes, less start-up
TOTAL_S = 290
# The CuPy stand-in's accept/refuse rules: its tests whose ``xp`` is the real CuPy
# (``[cupy]``, gpu-marked) run within the suite; rerun alone if the suite was cut short.
STANDIN_RULES = ROOT / "tests" / "test_cupy_standin.py"
STANDIN_BUDGET_S = 20  # kept from the suite's budget for that rerun
WORKERS = int(os.environ.get("GPU_CHECK_WORKERS", "8"))


# ------------------------------------------------------------------ is there a GPU?


def gpu_problem() -> str | None:
    """None when CuPy reaches a GPU that runs a kernel, else why not. Never raises."""
    try:
        import tensorgrad as tg
    except Exception as e:  # NumPy missing, a broken checkout ...
        return f"tensorgrad does not import ({type(e).__name__}: {e})"
    reason = tg.cuda.unavailable_reason()
    if reason is not None:
        return reason
    from tensorgrad import backend

    if getattr(backend._cupy, "__tensorgrad_standin__", False):
        return "the cupy on PYTHONPATH is the test suite's stand-in, not CuPy"
    try:
        float(backend._cupy.arange(4, dtype=backend._cupy.float32).sum())
    except Exception as e:
        return f"CuPy sees a GPU but cannot run a kernel on it ({type(e).__name__}: {e})"
    return None


def environment() -> list[str]:
    """Lines describing the machine and the versions, for the summary's head."""
    lines = [f"python {platform.python_version()}"]
    try:
        import numpy

        lines[0] += f", numpy {numpy.__version__}"
    except ImportError:
        pass
    try:
        import cupy

        rt = cupy.cuda.runtime
        props = rt.getDeviceProperties(0)
        name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        lines.append(f"GPU: {name}, sm_{props['major']}{props['minor']}, "
                     f"{props['totalGlobalMem'] / 2**30:.0f} GiB, {rt.getDeviceCount()} device(s); "
                     f"CuPy {cupy.__version__}, CUDA runtime {rt.runtimeGetVersion()}, "
                     f"driver {rt.driverGetVersion()}")
    except Exception as e:
        lines.append(f"GPU: none usable ({type(e).__name__})")
    try:
        import torch

        lines.append(f"PyTorch {torch.__version__} (CUDA {torch.version.cuda}, "
                     f"cuDNN {torch.backends.cudnn.version()})")
    except ImportError:
        lines.append("PyTorch: not installed (its side of the benchmarks is skipped)")
    return lines


# ---------------------------------------------------------------------- running


def child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + (
        [env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.update(extra)
    return env


def run_capped(cmd: list[str], log: Path, budget: float, env: dict[str, str]) -> dict:
    """Run ``cmd`` with its output into ``log``; at ``budget`` seconds interrupt it
    (SIGINT: pytest still writes its report), then kill it. Returns rc, seconds and
    whether it timed out."""
    start = time.perf_counter()
    with open(log, "w") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        f.flush()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT,
                                start_new_session=True)
        timed_out = False
        try:
            proc.wait(timeout=max(budget, 1))
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    return {"rc": proc.returncode, "seconds": time.perf_counter() - start,
            "timed_out": timed_out}


class Run:
    """The whole check: its output folder, its clock and what each part found."""

    def __init__(self, out: Path, dry: bool, parts: list[str], quick: bool = False):
        self.out, self.dry, self.parts, self.quick = out, dry, parts, quick
        self.start = time.perf_counter()
        self.started_at = datetime.datetime.now(datetime.timezone.utc)
        self.results: dict[str, dict] = {}
        self.env_lines = environment()

    def budget(self, part: str) -> float:
        left = TOTAL_S - (time.perf_counter() - self.start)
        later = sum(BUDGET_S[p] for p in self.parts[self.parts.index(part) + 1:])
        nominal = BUDGET_S[part] if len(self.parts) > 1 else TOTAL_S
        return max(5.0, min(nominal, left - later))

    # ---------------------------------------------------------------- part 1: suite

    def suite(self) -> None:
        xml, log = self.out / "suite.xml", self.out / "suite.log"
        diffs = self.out / "kernel_diffs.jsonl"
        diffs.unlink(missing_ok=True)
        budget = self.budget("suite") - (STANDIN_BUDGET_S if STANDIN_RULES.exists() else 0)
        if self.dry:  # a few files on the CPU: the same plumbing, in seconds
            targets, workers, device = ["tests/test_cuda.py", "tests/test_backends.py"], 2, "cpu"
        else:
            targets, workers, device = [], WORKERS, "cuda"
        cmd = [sys.executable, "-m", "pytest", *targets, "-n", str(workers), "-q", "-rf",
               "-p", "no:cacheprovider", f"--junitxml={xml}"]
        # TG_CUDA_KERNELS=1: the project's CUDA kernels are off by default until verified
        # here, so the suite on CUDA runs with them on (their own tests switch them on too)
        env = child_env(TG_TEST_DEVICE=device, HYPOTHESIS_PROFILE="ci", CI="true",
                        TG_KERNEL_DIFFS=str(diffs), TG_CUDA_KERNELS="1")
        result = run_capped(cmd, log, budget, env)
        result.update(parse_junit(xml) if xml.exists() else parse_pytest_log(log))
        result["kernel_diffs"] = largest_diffs(diffs)
        if not diffs.exists() or not diffs.stat().st_size:
            diffs.unlink(missing_ok=True)
        result["standin"] = self.standin_rules(result.get("cases", []))
        result.pop("cases", None)
        self.results["suite"] = result

    def standin_rules(self, cases: list[tuple[str, str]]) -> dict:
        """The stand-in's accept/refuse rules against the real CuPy: from the suite's
        results, or rerun alone when the suite did not reach them."""
        if not STANDIN_RULES.exists():
            return {"note": f"{STANDIN_RULES.relative_to(ROOT)} is missing: nothing to check"}
        mine = [(n, o) for n, o in cases if STANDIN_RULES.stem in n and "[cupy" in n]
        if mine or self.dry:  # (a dry run has no real CuPy to check against)
            failed = [n for n, o in mine if o in ("failed", "error")]
            return {"from_suite": True, "passed": sum(o == "passed" for _, o in mine),
                    "failed": len(failed), "skipped": sum(o == "skipped" for _, o in mine),
                    "failures": [(n, "") for n in failed]}
        log = self.out / "standin.log"
        cmd = [sys.executable, "-m", "pytest", str(STANDIN_RULES.relative_to(ROOT)), "-q",
               "-rf", "-p", "no:cacheprovider", "-k", "cupy", "-n", "0"]
        env = child_env(TG_TEST_DEVICE="cuda", HYPOTHESIS_PROFILE="ci", CI="true")
        result = run_capped(cmd, log, STANDIN_BUDGET_S, env)
        result.update(parse_pytest_log(log))
        return result

    # ---------------------------------------------------------------- part 2: bench

    def bench(self) -> None:
        out = self.out / "bench.md"
        out.unlink(missing_ok=True)
        budget = self.budget("bench")
        cmd = [sys.executable, str(Path(__file__).resolve()), "--bench-child",
               "--out", str(self.out), "--deadline", str(budget - 5)]
        cmd += ["--dry-run"] * self.dry + ["--quick"] * self.quick
        # a dry run shares a small CPU: one BLAS thread (bench_ops reads TG_BENCH_THREADS)
        env = child_env(**({"TG_BENCH_THREADS": "1"} if self.dry else {}))
        result = run_capped(cmd, self.out / "bench.log", budget, env)
        log = (self.out / "bench.log").read_text()
        (self.out / "bench.log").unlink()  # its useful lines are in bench.md
        if result["rc"] != 0 and not result["timed_out"]:
            result["error_tail"] = log[-3000:]
        self.results["bench"] = result

    # ---------------------------------------------------------------- part 3: train

    def train(self) -> None:
        log = self.out / "train.log"
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, "examples/train.py", "--out", tmp, "--no-progress"]
            cmd += (["--device", "cpu", "--epochs", "1", "--limit", "96", "--batch-size", "32"]
                    if self.dry else ["--device", "cuda"])
            result = run_capped(cmd, log, self.budget("train"), child_env())
            final = Path(tmp) / "final.json"
            if final.exists():
                result["final"] = json.loads(final.read_text())
            metrics = Path(tmp) / "metrics.jsonl"
            if metrics.exists():
                rows = [json.loads(line) for line in metrics.read_text().splitlines()
                        if line.strip()]
                result["epochs_done"] = len(rows)
                if rows:
                    result["last_test_acc"] = rows[-1].get("test_acc")
        self.results["train"] = result

    # ---------------------------------------------------------------- summary.md

    def write_summary(self) -> None:
        took = time.perf_counter() - self.start
        mode = "dry run on the CPU (tiny sizes)" if self.dry else "GPU"
        lines = [f"# gpu-check, {self.started_at:%Y-%m-%d %H:%M} UTC ({mode})", ""]
        lines += [f"- {line}" for line in self.env_lines]
        lines += [f"- parts: {', '.join(self.parts)}; {took:.0f} s so far", ""]
        for part in self.parts:
            title = {"suite": "1. Test suite on CUDA", "bench": "2. Benchmarks against PyTorch",
                     "train": "3. examples/train.py --device cuda"}[part]
            lines += [f"## {title}", ""]
            r = self.results.get(part)
            lines += ["(not run yet)", ""] if r is None else getattr(self, f"_md_{part}")(r)
        lines += ["## Files", ""]
        lines += [f"- {p.name}" for p in sorted(self.out.iterdir()) if p.is_file()]
        (self.out / "summary.md").write_text("\n".join(lines) + "\n")

    @staticmethod
    def _status(r: dict) -> str:
        return (f"stopped at its budget after {r['seconds']:.0f} s" if r["timed_out"]
                else f"exit {r['rc']} after {r['seconds']:.0f} s")

    def _md_suite(self, r: dict) -> list[str]:
        counts = ", ".join(f"{r.get(k, 0)} {k}" for k in
                           ("passed", "failed", "errors", "skipped")) if "passed" in r else \
            "no counts (see suite.log)"
        lines = [f"{counts}; pytest {self._status(r)}.", ""]
        if r.get("failures"):
            lines += [f"Failures ({len(r['failures'])}, first 40):", ""]
            lines += [f"- `{name}`: {msg}" for name, msg in r["failures"][:40]]
            lines.append("")
        if r.get("kernel_diffs"):
            lines += ["| kernel | largest abs difference from the generic path | case |",
                      "|---|---:|---|"]
            lines += [f"| {k} | {d:.3g} | {c} |" for k, d, c in r["kernel_diffs"]]
            lines.append("")
        else:
            lines += ["Kernels against their generic reference: no `gpu` test reported a "
                      "difference (no kernels yet, or none ran).", ""]
        s = r.get("standin", {})
        head = "The CuPy stand-in's accept/refuse rules against the real CuPy"
        if "note" in s:
            lines += [f"{head}: {s['note']}.", ""]
        else:
            where = "in the suite" if s.get("from_suite") else \
                f"rerun alone, {self._status(s)} (standin.log)"
            lines += [f"{head}: {s.get('passed', 0)} passed, {s.get('failed', 0)} failed, "
                      f"{s.get('skipped', 0)} skipped ({where})."]
            lines += [f"- `{name}`" for name, _ in s.get("failures", [])[:20]]
            lines.append("")
        return lines

    def _md_bench(self, r: dict) -> list[str]:
        path = self.out / "bench.md"
        lines = [f"bench {self._status(r)}.", ""]
        if path.exists():
            lines += path.read_text().splitlines() + [""]
        if r.get("error_tail"):
            lines += ["```", r["error_tail"], "```", ""]
        return lines

    def _md_train(self, r: dict) -> list[str]:
        lines = [f"train.py {self._status(r)}."]
        if "final" in r:
            f = r["final"]
            lines.append(f"Test accuracy {f.get('test_accuracy', float('nan')):.4f} after "
                         f"{f.get('epochs')} epochs of {f.get('model')} on {f.get('dataset')}, "
                         f"{f.get('seconds', float('nan')):.1f} s of training "
                         f"({r['seconds']:.1f} s wall, start-up and kernel compiles included).")
        elif r.get("epochs_done"):
            lines.append(f"Cut short after {r['epochs_done']} epochs; test accuracy then "
                         f"{r.get('last_test_acc')}.")
        else:
            lines.append("No epoch finished (see train.log).")
        return lines + [""]


def parse_junit(xml: Path) -> dict:
    """Counts and (test id, first line of the message) of each failure or error."""
    try:
        root = ET.parse(xml).getroot()
    except ET.ParseError:
        return {}
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    counts = {"tests": 0, "failed": 0, "errors": 0, "skipped": 0}
    for s in suites:
        counts["tests"] += int(s.get("tests", 0))
        counts["failed"] += int(s.get("failures", 0))
        counts["errors"] += int(s.get("errors", 0))
        counts["skipped"] += int(s.get("skipped", 0))
    counts["passed"] = counts["tests"] - counts["failed"] - counts["errors"] - counts["skipped"]
    failures, cases = [], []
    for case in root.iter("testcase"):
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        outcome = "passed"
        for bad in list(case.findall("failure")) + list(case.findall("error")):
            outcome = "failed" if bad.tag == "failure" else "error"
            message = (bad.get("message") or bad.text or "").strip().splitlines()
            failures.append((name, (message[0] if message else "")[:200]))
        if outcome == "passed" and case.find("skipped") is not None:
            outcome = "skipped"
        cases.append((name, outcome))
    counts["failures"], counts["cases"] = failures, cases
    return counts


def parse_pytest_log(log: Path) -> dict:
    """Counts from pytest's closing line and the ``FAILED`` lines of ``-rf``."""
    text = log.read_text(errors="replace") if log.exists() else ""
    counts: dict = {}
    for n, word in re.findall(r"(\d+) (passed|failed|errors?|skipped)", text):
        counts["errors" if word.startswith("error") else word] = int(n)
    if counts:
        counts.setdefault("passed", 0)
    counts["failures"] = [(m.group(1), m.group(2) or "") for m in
                          re.finditer(r"^FAILED (\S+)(?: - (.*))?$", text, re.M)]
    return counts


def largest_diffs(path: Path) -> list[tuple[str, float, str]]:
    """(kernel, largest |difference|, its case), one row per kernel, from the jsonl."""
    worst: dict[str, tuple[float, str]] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            k, d = row.get("kernel", "?"), float(row.get("max_abs", 0.0))
            if k not in worst or d > worst[k][0]:
                worst[k] = (d, str(row.get("case", "")))
    return [(k, d, c) for k, (d, c) in sorted(worst.items())]


# ---------------------------------------------------------------- the bench child


def bench_child(out: Path, dry: bool, deadline_s: float, quick: bool) -> int:
    """Part 2, in its own process: writes bench.md row by row."""
    from gpu_bench import run_benchmarks

    return run_benchmarks(out / "bench.md", dry=dry, stop_at=time.perf_counter() + deadline_s,
                          quick=quick)


# ---------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--part", default=os.environ.get("PART", "all") or "all",
                   help="all | " + " | ".join(PARTS))
    p.add_argument("--out", default=os.environ.get("OUT") or "gpu-check")
    p.add_argument("--dry-run", action="store_true",
                   help="run every part on the CPU with tiny sizes (no GPU needed)")
    p.add_argument("--quick", action="store_true",
                   help="with --dry-run: leave ResNet-50 out of the benchmarks (seconds)")
    p.add_argument("--bench-child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--deadline", type=float, default=80.0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    out = Path(args.out)
    if args.bench_child:
        sys.path.insert(0, str(ROOT / "benchmarks"))
        return bench_child(out, args.dry_run, args.deadline, args.quick)
    if args.part != "all" and args.part not in PARTS:
        p.error(f"--part must be all, {', '.join(PARTS)}; got {args.part!r}")
    if not args.dry_run:
        problem = gpu_problem()
        if problem is not None:
            print(f"gpu-check: no usable GPU here ({problem}); nothing to check.")
            return 0
    parts = list(PARTS) if args.part == "all" else [args.part]
    out.mkdir(parents=True, exist_ok=True)
    run = Run(out, args.dry_run, parts, quick=args.quick)
    run.write_summary()
    for part in parts:
        print(f"gpu-check: {part} (budget {run.budget(part):.0f} s) ...", flush=True)
        getattr(run, part)()
        run.write_summary()
    print(f"gpu-check: done in {time.perf_counter() - run.start:.0f} s; "
          f"read {out / 'summary.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
