PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/spikeforge train quickstart --out runs/quickstart
	$(BIN)/spikeforge report runs/quickstart

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

# static types of the package (it ships py.typed); settings in pyproject.toml [tool.mypy]
typecheck: $(STAMP)
	$(BIN)/mypy

# peers are not dependencies of spikeforge: snnTorch installs normally; SpikingJelly and Norse pin other torch
# stacks, so they go in with --no-deps plus the few modules they import (loguru, tqdm, nirtorch).
bench: $(STAMP)
	$(BIN)/pip install -q -c constraints.txt snntorch
	$(BIN)/pip install -q --no-deps spikingjelly==2.0.0 norse==1.1.0 nirtorch
	$(BIN)/pip install -q -c constraints.txt loguru tqdm
	$(BIN)/python benchmarks/step.py

clean:
	rm -rf $(VENV) runs build dist
