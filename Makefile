# The two commands a newcomer needs: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.fedkg-installed
PYTEST_ARGS ?=

.PHONY: install demo test lint format clean

install: $(STAMP)

# CPU torch 2.13.0 goes in first so nothing can pull a multi-GB CUDA build by accident;
# on a machine with an NVIDIA GPU, install the CUDA build of torch first and this step keeps it.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet "torch==2.13.0"
	$(PY) -m pip install --quiet -e ".[all,dev]"
	@touch $(STAMP)

demo: install
	$(VENV)/bin/fl-sim demo --out results

test: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf results .pytest_cache .ruff_cache tests/artifacts
