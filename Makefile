# The two commands of the README: `make test` and `make train`.
# Both create .venv when it is missing and install the project with its dev extras.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test train lint bench clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/ruff check tensorgrad nn models tests examples benchmarks
	$(BIN)/python -m pytest -n auto

train: $(STAMP)
	$(BIN)/python examples/train.py

lint: $(STAMP)
	$(BIN)/ruff check tensorgrad nn models tests examples benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_engine.py
	$(BIN)/python benchmarks/bench_ops.py
	$(BIN)/python benchmarks/bench_model.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info
