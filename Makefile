# ml-service — every command a developer or a pipeline runs is a target here.
# `make run` serves the default model; `make test` runs the full test suite. Both create
# .venv from the hashed lock (requirements/dev.txt) when it is missing or stale.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PIP := $(BIN)/python -m pip --quiet --disable-pip-version-check
DATA ?= data/housing.csv
SCHEMA ?= data/housing.schema.json
MODEL_DIR ?= models/housing
MODEL := $(MODEL_DIR)/manifest.json
PYTEST_ARGS ?=

export PIP_NO_INPUT := 1

.PHONY: help setup install model train run test all lock clean

help: ## List the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | sort | awk -F':.*## ' '{printf "  %-26s %s\n", $$1, $$2}'

$(STAMP): requirements/dev.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --require-hashes -r requirements/dev.txt 2>&1 | { grep -v 'is ignored: it is neither' || true; }
	$(PIP) install --no-deps --no-build-isolation -e .
	@touch $@

setup: $(STAMP) ## Create the virtual environment (.venv) from the lock
install: $(STAMP) ## Install every pinned dependency (same as setup)

$(MODEL): $(STAMP) $(DATA) $(SCHEMA) $(wildcard src/ml_service/model/*.py)
	$(BIN)/ml-service train --data $(DATA) --schema $(SCHEMA) --out $(MODEL_DIR)

model: $(MODEL) ## Train the default model if it is missing or stale
train: $(STAMP) ## Train the default model now (add ARGS=... for more options)
	$(BIN)/ml-service train --data $(DATA) --schema $(SCHEMA) --out $(MODEL_DIR) $(ARGS)

# `make run` serves what ML_SERVICE_MODEL_DIR or ML_SERVICE_MODEL_REPOSITORY name when either is
# set in the environment, else the default model (trained first when missing or stale).
RUN_OWN_MODEL := $(strip $(ML_SERVICE_MODEL_DIR)$(ML_SERVICE_MODEL_REPOSITORY))

run: $(STAMP) $(if $(RUN_OWN_MODEL),,$(MODEL)) ## Serve the default model on PORT (or the artifact or repository ML_SERVICE_MODEL_DIR / _REPOSITORY name)
	$(if $(RUN_OWN_MODEL),,ML_SERVICE_MODEL_DIR=$(MODEL_DIR)) $(BIN)/ml-service serve

test: $(STAMP) $(MODEL) browser-deps ## Run the whole test suite (installs Debian's chromium when missing)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lock: $(STAMP) ## Re-resolve requirements/*.txt from pyproject.toml
	$(BIN)/uv pip compile pyproject.toml --universal --python-version 3.11 --generate-hashes -q -o requirements/runtime.txt
	$(BIN)/uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 --generate-hashes -q -o requirements/dev.txt
	$(BIN)/uv pip compile pyproject.toml --extra build -c requirements/dev.txt --universal --python-version 3.11 --generate-hashes -q -o requirements/build.txt

clean: ## Remove the virtual environment, models and reports
	rm -rf $(VENV) models build dist reports .pytest_cache .mypy_cache .ruff_cache

-include mk/*.mk

all: lint test loadtest image-test ## Everything a pipeline runs: lint, test, load test, the image run
