# The two commands a new user needs: `make run` (the local stack) and `make test`.
SHELL := /bin/bash
VENV ?= .venv
BIN := $(VENV)/bin
# Lambda runs Python 3.12: use it where the machine has it (PATH or pyenv), else 3.11.
PYTHON ?= $(shell for p in python3.12 $$(pyenv root 2>/dev/null)/versions/3.12*/bin/python3.12 python3.11 python3; do \
	"$$p" -c 'import sys; sys.exit(sys.version_info[:2] not in ((3, 12), (3, 11)))' 2>/dev/null && { echo "$$p"; break; }; done)
STAMP := $(VENV)/.installed

.PHONY: venv run test lint typecheck validate build deploy bench clean

$(STAMP): requirements-dev.txt constraints.txt layers/shared/requirements.txt layers/shared/pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.12 or 3.11 is needed" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt -c constraints.txt
	$(BIN)/pip install --quiet --no-deps -e layers/shared
	@touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/python -m local

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

validate: $(STAMP)
	AWS_DEFAULT_REGION=us-east-1 AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing $(BIN)/sam validate --lint
	$(BIN)/cfn-lint template.yaml

build: $(STAMP)
	PATH="$(dir $(shell command -v $(PYTHON))):$$PATH" $(BIN)/sam build

deploy: build
	$(BIN)/sam deploy --config-env $(or $(ENV),default)

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .aws-sam .pytest_cache .ruff_cache .mypy_cache
