# The two commands a new user needs: `make run` (the local stack) and `make test`.
SHELL := /bin/bash
VENV ?= .venv
BIN := $(VENV)/bin
# Lambda runs Python 3.12: use it where the machine has it (PATH or pyenv), else 3.11.
PYTHON ?= $(shell for p in python3.12 $$(pyenv root 2>/dev/null)/versions/3.12*/bin/python3.12 python3.11 python3; do \
	"$$p" -c 'import sys; sys.exit(sys.version_info[:2] not in ((3, 12), (3, 11)))' 2>/dev/null && { echo "$$p"; break; }; done)
STAMP := $(VENV)/.installed
# checkov (tests/checks/test_checkov.py) pins boto3, botocore and pydantic of its own: its own venv.
CHECKOV_VENV := $(VENV)/checkov

.PHONY: venv run test test-fast lint typecheck validate openapi build deploy smoke bench clean

$(STAMP): requirements-dev.txt constraints.txt requirements-checkov.txt layers/shared/requirements.txt \
		functions/serve_docs/requirements.txt \
		layers/shared/pyproject.toml cli/pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.12 or 3.11 is needed" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt -c constraints.txt
	$(BIN)/pip install --quiet --no-deps -e layers/shared
	$(BIN)/pip install --quiet --no-deps -e cli
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/pip install --quiet -r requirements-checkov.txt
	@touch $(STAMP)

venv: $(STAMP)

# The audit digest job every minute locally (hourly in AWS): LOCAL_DIGEST_INTERVAL_SECONDS overrides.
run: $(STAMP) openapi
	LOCAL_DIGEST_INTERVAL_SECONDS=$${LOCAL_DIGEST_INTERVAL_SECONDS:-60} $(BIN)/python -m local

# ruff, mypy, then every test: unit, integration, e2e, and tests/checks (sam validate --lint, cfn-lint,
# checkov, sam build with Python 3.12, the state machine's graph, least-privilege IAM, samconfig.toml).
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest tests

# The unit tier alone, for every change: ruff, mypy, then tests/unit (no network: pytest-socket blocks
# it; the ports are in-memory fakes). Well under a minute.
test-fast: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest tests/unit

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

validate: $(STAMP)
	AWS_DEFAULT_REGION=us-east-1 AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing SAM_CLI_TELEMETRY=0 \
		$(BIN)/sam validate --lint
	$(BIN)/cfn-lint template.yaml templates/*.yaml

# sam build runs the Lambda runtime's Python itself (python3.12 on PATH), whatever the venv runs.
PYTHON312 ?= $(shell for p in python3.12 $$(pyenv root 2>/dev/null)/versions/3.12*/bin/python3.12; do \
	"$$p" -c 'import sys; assert sys.version_info[:2] == (3, 12); print(sys.executable)' 2>/dev/null && break; done)

# The OpenAPI document, built from the routers into the docs function's folder (served as a file: no
# router is imported on a request). tests/integration/test_docs_api.py fails when the committed one is stale.
openapi: $(STAMP)
	$(BIN)/python -c 'from account_connections.api.docs import write_document; write_document("functions/serve_docs/openapi.json")'

build: $(STAMP) openapi
	@test -n "$(PYTHON312)" || { echo "sam build needs Python 3.12 (the Lambda runtime): install it, e.g. pyenv install 3.12" >&2; exit 1; }
	PATH="$(dir $(PYTHON312)):$$PATH" SAM_CLI_TELEMETRY=0 $(BIN)/sam build

deploy: build
	$(BIN)/sam deploy --config-env $(or $(ENV),default)

# After `sam deploy`: everything that needs no mailbox, against the stack at URL (acctconn smoke; it makes
# one request in SPACE for ACCOUNT and cancels it). The tokens reach acctconn in its environment, not its
# command line (which any process list shows).
smoke: private export ACCTCONN_TOKEN = $(TOKEN)
smoke: private export ACCTCONN_AUDITOR_TOKEN = $(or $(AUDITOR_TOKEN),$(TOKEN))
smoke: $(STAMP)
	@test -n "$$ACCTCONN_TOKEN" -a -n "$(URL)" -a -n "$(SPACE)" -a -n "$(ACCOUNT)" || { \
		echo "usage: make smoke URL=https://... TOKEN=jwt [AUDITOR_TOKEN=jwt] SPACE=space ACCOUNT=account" >&2; exit 2; }
	$(BIN)/acctconn --api "$(URL)" smoke --space "$(SPACE)" --account "$(ACCOUNT)"

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .aws-sam .pytest_cache .ruff_cache .mypy_cache
