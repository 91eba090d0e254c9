# `make lint`: every kind of file in the repository through its pinned linter.
#
# The lint tools (actionlint, check-jsonschema, hadolint, shellcheck, yamllint) come from the
# hashed lock requirements/lint.txt and live in their own virtual environment, $(LINT_VENV),
# installed once and refreshed only when the lock changes. ruff and mypy come from .venv.
# Every sub-target takes its files from a LINT_*_FILES / LINT_PY_PATHS variable, so a test (or
# a person) can point the very same command at other files: `make lint-shell LINT_SH_FILES=x.sh`.
# Other makefiles add steps with prerequisite-only lines such as `lint: lint-k8s`.

LINT_VENV ?= .tools/lint
LINT_BIN := $(LINT_VENV)/bin
LINT_STAMP := $(LINT_VENV)/.installed

# Files each linter sees. Globs over what git tracks plus new files it does not ignore, so a
# script or manifest added by anyone is checked without editing this file.
lint_git_files = $(sort $(wildcard $(shell git ls-files --cached --others --exclude-standard -- $(1) 2>/dev/null)))
LINT_PY_PATHS ?= $(wildcard src tests loadtest)
LINT_MYPY_PATHS ?=
LINT_SH_FILES ?= $(call lint_git_files,'*.sh' '*.bash' .ci/run)
LINT_DOCKER_FILES ?= $(call lint_git_files,':(glob)**/Dockerfile*' '*.Dockerfile')
LINT_WORKFLOW_FILES ?= $(wildcard .github/workflows/*.yml .github/workflows/*.yaml)
LINT_AZURE_FILES ?= $(wildcard azure-pipelines*.yml)
LINT_YAML_FILES ?= $(call lint_git_files,'*.yml' '*.yaml')

.PHONY: lint lint-tools lint-python lint-shell lint-docker lint-workflows lint-azure-pipelines lint-yaml lock-lint

lint: lint-python lint-shell lint-docker lint-workflows lint-azure-pipelines lint-yaml ## Lint every kind of file (Python, shell, Dockerfiles, workflows, pipelines, YAML)

$(LINT_STAMP): requirements/lint.txt
	@test -x $(LINT_BIN)/python || $(PYTHON) -m venv $(LINT_VENV)
	$(LINT_BIN)/python -m pip --quiet --disable-pip-version-check install --require-hashes -r requirements/lint.txt 2>&1 | { grep -v 'is ignored: it is neither' || true; }
	@touch $@

lint-tools: $(LINT_STAMP) ## Install the pinned lint tools into .tools/lint

lint-python: $(STAMP) ## ruff (lint + format check) over src tests loadtest; mypy --strict
	$(BIN)/ruff check $(LINT_PY_PATHS)
	$(BIN)/ruff format --check $(LINT_PY_PATHS)
	$(BIN)/mypy $(LINT_MYPY_PATHS)

lint-shell: $(LINT_STAMP) ## shellcheck every shell script
	$(if $(strip $(LINT_SH_FILES)),$(LINT_BIN)/shellcheck --external-sources $(LINT_SH_FILES),@echo "lint-shell: no shell scripts")

lint-docker: $(LINT_STAMP) ## hadolint every Dockerfile
	$(if $(strip $(LINT_DOCKER_FILES)),$(LINT_BIN)/hadolint $(LINT_DOCKER_FILES),@echo "lint-docker: no Dockerfile")

# actionlint runs shellcheck over every `run:` block; it finds it on PATH.
lint-workflows: $(LINT_STAMP) ## actionlint + GitHub workflow schema on .github/workflows/*.yml
	$(if $(strip $(LINT_WORKFLOW_FILES)),PATH="$(abspath $(LINT_BIN)):$$PATH" $(LINT_BIN)/actionlint $(LINT_WORKFLOW_FILES),@echo "lint-workflows: no workflows")
	$(if $(strip $(LINT_WORKFLOW_FILES)),$(LINT_BIN)/check-jsonschema --builtin-schema vendor.github-workflows $(LINT_WORKFLOW_FILES))

lint-azure-pipelines: $(LINT_STAMP) ## Azure Pipelines schema on azure-pipelines*.yml
	$(if $(strip $(LINT_AZURE_FILES)),$(LINT_BIN)/check-jsonschema --builtin-schema vendor.azure-pipelines --data-transform azure-pipelines --regex-variant nonunicode $(LINT_AZURE_FILES),@echo "lint-azure-pipelines: no pipeline")

lint-yaml: $(LINT_STAMP) ## yamllint every YAML file (rules and exclusions in .yamllint.yml)
	$(if $(strip $(LINT_YAML_FILES)),$(LINT_BIN)/yamllint --config-file .yamllint.yml $(LINT_YAML_FILES),@echo "lint-yaml: no YAML")

lock-lint: $(STAMP) ## Re-resolve requirements/lint.txt from requirements/lint.in
	$(BIN)/uv pip compile requirements/lint.in --universal --python-version 3.11 --generate-hashes -q -o requirements/lint.txt
