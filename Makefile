# The two commands of the README: `make test` and `make train`.
# Both create .venv when it is missing and install the project with its dev extras.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test train lint bench gpu-check clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

# Two passes: the suite on the CPU, then its device-aware tests with "cuda" served by the
# NumPy-backed CuPy stand-in of tests/standin (first on PYTHONPATH, so subprocesses such
# as train.py inherit it), where host/device mixing fails as it would on a GPU.
test: $(STAMP)
	$(BIN)/ruff check tensorgrad nn models tests examples benchmarks
	$(BIN)/python -m pytest -n auto
	PYTHONPATH="$(CURDIR)/tests/standin$${PYTHONPATH:+:$$PYTHONPATH}" TG_TEST_DEVICE=cuda \
		HYPOTHESIS_PROFILE=standin $(BIN)/python -m pytest -n auto --device-only

train: $(STAMP)
	$(BIN)/python examples/train.py

lint: $(STAMP)
	$(BIN)/ruff check tensorgrad nn models tests examples benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_engine.py
	$(BIN)/python benchmarks/bench_ops.py
	$(BIN)/python benchmarks/bench_model.py

# On a GPU machine: the machine's own python3 with the checkout on PYTHONPATH (no venv,
# nothing installed); 5 minutes; results in $(OUT)/summary.md. PART=suite|bench|train
# reruns one part. Without a usable GPU it says so in one line and exits 0.
GPU_PYTHON ?= python3
PART ?= all
OUT ?= gpu-check
gpu-check:
	@PYTHONPATH="$(CURDIR)$${PYTHONPATH:+:$$PYTHONPATH}" $(GPU_PYTHON) benchmarks/gpu_check.py --part "$(PART)" --out "$(OUT)"

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info
