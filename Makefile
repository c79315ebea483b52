# jobwatch: every target sets up what it needs on a fresh machine (venvs created by this file).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SAM_VENV := .venv-sam
SAM := $(CURDIR)/$(SAM_VENV)/bin/sam
SAM_CLI_VERSION := 1.170.0
# The Lambda runtime is python3.13; `sam build` needs it on PATH. pyenv provides it here; the SAM venv
# is built on it, so $(SAM_VENV)/bin/python3.13 exists and is put first on PATH for sam.
PY313 ?= $(shell PYENV_VERSION=3.13.0 python3.13 -c 'import sys; print(sys.executable)' 2>/dev/null || command -v python3.13)
# `make invoke`: the Lambda runtime interface client alone in its own python3.13 venv (what Lambda keeps
# in /var/runtime); the function's code and dependencies come from the `sam build` artifact.
LAMBDA_VENV := .venv-lambda
AWSLAMBDARIC_VERSION := 4.2.2
# What `sam build` reads: when one of these changes, `make invoke` rebuilds the artifact first.
SAM_INPUTS := template.yaml samconfig.toml $(shell find functions layers -type f -not -path '*/__pycache__/*' -not -name '*.pyc' 2>/dev/null)

export JOBWATCH_ALLOW_HTTP_LOOPBACK ?= true
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help install demo sandbox test lint typecheck unit contract integration template bench bench-scale soak build clean openapi api invoke

help:
	@echo "make demo   run the main job end to end offline (moto + simulators + Slack sink)"
	@echo "make sandbox  moto, simulator (sample jobs of every source) and Slack sink until Ctrl-C; then . .sandbox/env"
	@echo "make test   ruff, mypy and the whole pytest suite (unit, contract, integration, template)"
	@echo "make bench  poller benchmark (2,000 jobs, 50 ms upstream latency)"
	@echo "make bench-scale  fan-out benchmark: coordinator + 4 poll workers over 20,000 jobs (BENCH_JOBS, BENCH_WORKERS, BENCH_SHARDS, BENCH_CONCURRENCY)"
	@echo "make soak   fault-injection soak: 3,000 random job stories under faults (SOAK_SCHEDULES, SOAK_SEED)"
	@echo "make build  sam build (needs python3.13)"
	@echo "make invoke FN=PollerFunction EVENT=events/poller-schedule.json  run a function from its sam build artifact (no Docker)"
	@echo "make openapi  regenerate docs/openapi.json from the API code"
	@echo "make api    serve the registration API on 127.0.0.1:8080 (needs a local stack, see README)"

$(BIN)/.installed: pyproject.toml layers/jobwatch/requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

$(SAM_VENV)/.installed:
	@test -n "$(PY313)" || { echo "python3.13 not found: needed for the SAM CLI and sam build" >&2; exit 1; }
	test -x $(SAM_VENV)/bin/python || $(PY313) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/python -m pip install --quiet aws-sam-cli==$(SAM_CLI_VERSION)
	touch $@

install: $(BIN)/.installed

demo: $(BIN)/.installed
	$(BIN)/python -m jobwatch_devkit.demo

# SANDBOX_ARGS: e.g. `--simulator-port 9001 --scenario my-jobs.json` (see docs/simulator.md).
sandbox: $(BIN)/.installed
	$(BIN)/python -m jobwatch_devkit.sandbox $(SANDBOX_ARGS)

# Complexity gate: a function graded D or worse (cyclomatic complexity above 20) fails lint.
lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/xenon --max-absolute C --max-modules B --max-average A layers/jobwatch/jobwatch functions tools/jobwatch_tools

typecheck: $(BIN)/.installed
	$(BIN)/mypy

test: $(BIN)/.installed $(SAM_VENV)/.installed lint typecheck
	JOBWATCH_SAM=$(SAM) $(BIN)/python -m pytest --durations=15

unit: $(BIN)/.installed
	$(BIN)/python -m pytest tests/unit tests/contract

integration: $(BIN)/.installed
	$(BIN)/python -m pytest tests/integration

template: $(BIN)/.installed $(SAM_VENV)/.installed
	JOBWATCH_SAM=$(SAM) $(BIN)/python -m pytest tests/template

openapi: $(BIN)/.installed
	$(BIN)/python -m jobwatch.api --openapi > docs/openapi.json

api: $(BIN)/.installed
	$(BIN)/jobwatch api serve --port 8080

bench: $(BIN)/.installed
	$(BIN)/python -m benchmarks.bench_poller

# Run as a module from the repository root: it imports bench_poller's meters as benchmarks.bench_poller.
bench-scale: $(BIN)/.installed
	$(BIN)/python -m benchmarks.bench_scale

soak: $(BIN)/.installed
	$(BIN)/python benchmarks/soak.py

build: $(SAM_VENV)/.installed
	PATH=$(CURDIR)/$(SAM_VENV)/bin:$$PATH $(SAM) build

# Quiet (@, progress on stderr) like everything `make invoke` needs: its stdout is the response.
$(LAMBDA_VENV)/.installed:
	@test -n "$(PY313)" || { echo "python3.13 not found: needed to run the functions locally (make invoke)" >&2; exit 1; }
	@echo "creating $(LAMBDA_VENV) (awslambdaric==$(AWSLAMBDARIC_VERSION) on python3.13)" >&2
	@test -x $(LAMBDA_VENV)/bin/python || $(PY313) -m venv $(LAMBDA_VENV)
	@$(LAMBDA_VENV)/bin/python -m pip install --quiet --upgrade pip >&2
	@$(LAMBDA_VENV)/bin/python -m pip install --quiet --only-binary=:all: awslambdaric==$(AWSLAMBDARIC_VERSION) >&2
	@touch $@

# The artifact, rebuilt only when the template, a function or the layer changed.
.aws-sam/build.stamp: $(SAM_INPUTS) | $(SAM_VENV)/.installed
	@echo "sam build: the template, a function or the layer changed" >&2
	@PATH=$(CURDIR)/$(SAM_VENV)/bin:$$PATH SAM_CLI_TELEMETRY=0 $(SAM) build >&2
	@touch $@

# One invocation through awslambdaric and a local Runtime API, against AWS_ENDPOINT_URL when set (a
# moto server with a local stack), else a throwaway moto server: response on stdout, logs on stderr.
ifneq ($(filter invoke,$(MAKECMDGOALS)),)
ifeq ($(and $(FN),$(EVENT)),)
$(error usage: make invoke FN=PollerFunction EVENT=events/poller-schedule.json)
endif
endif
invoke: $(BIN)/.installed $(LAMBDA_VENV)/.installed .aws-sam/build.stamp
	@$(BIN)/python -m jobwatch_tools.lambda_local $(FN) $(EVENT) --runtime-python $(LAMBDA_VENV)/bin/python

clean:
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache .bench .demo
