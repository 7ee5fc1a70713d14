# fraudops — one command per chore. `make help` lists them.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install demo test lint typecheck unit bench bench-service bench-learn clean

help: ## list the commands
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,torch]'
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install fraudops with its dev tools

demo: $(STAMP) ## simulate, ingest, train and replay the online path end to end
	$(BIN)/fraudops demo

test: lint typecheck unit ## ruff, mypy and pytest: what CI runs

lint: $(STAMP) ## ruff lint and format check
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP) ## mypy (strict) over src, tests and bench
	$(BIN)/mypy

unit: $(STAMP) ## pytest
	$(BIN)/pytest

bench: $(STAMP) ## benchmarks on the default 1.75 M dataset; prints JSON
	$(BIN)/python bench/foundation.py

bench-service: $(STAMP) ## load benchmark of the decision service (≈10 min); prints JSON
	$(BIN)/python bench/service.py

bench-learn: $(STAMP) ## the learn targets: train, baselines, 50-trial tuning (≈15 min); JSON
	$(BIN)/python bench/learn.py

clean: ## remove the environment and generated data
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache demo-data
