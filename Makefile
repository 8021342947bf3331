PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck bench bench-neuron fuzz docs study study-quick clean

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

# fuzz every file reader with hypothesis: FUZZ_EXAMPLES cases per parser (default 10,000); fails on any
# exception other than spikeforge's own data errors, or on a case above 2 s / 500 MB (see tests/data/test_data_fuzz.py)
FUZZ_EXAMPLES ?= 10000
fuzz: $(STAMP)
	SPIKEFORGE_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest tests/data/test_data_fuzz.py -q -s -p no:cacheprovider

# peers are not dependencies of spikeforge: snnTorch installs normally; SpikingJelly and Norse pin other torch
# stacks, so they go in with --no-deps plus the few modules they import (loguru, tqdm, nirtorch).
bench: $(STAMP)
	$(BIN)/pip install -q -c constraints.txt snntorch
	$(BIN)/pip install -q --no-deps spikingjelly==2.0.0 norse==1.1.0 nirtorch
	$(BIN)/pip install -q -c constraints.txt loguru tqdm
	$(BIN)/python benchmarks/step.py

# the neuron micro-benchmark (keeps the whole-step section of docs/benchmarks.md)
bench-neuron: $(STAMP)
	$(BIN)/python benchmarks/neuron.py

# the claims study (docs/results.md from results/*.json): ~50 min on 2 CPU cores, resumable (finished runs are kept);
# needs Fashion-MNIST (Debian: apt-get install dataset-fashion-mnist). In the background:
#   nohup make study > study.log 2>&1 &
study: $(STAMP)
	$(BIN)/spikeforge study --seeds 3 --jobs 2 --out results --report docs/results.md

# smoke version on the embedded digits (minutes); results in runs/study-quick/
study-quick: $(STAMP)
	$(BIN)/spikeforge study --quick

# documentation site into site/ (MkDocs + Material, API reference from the docstrings); strict: warnings fail
docs: $(STAMP)
	$(BIN)/mkdocs build --strict -d site

clean:
	rm -rf $(VENV) runs build dist site
