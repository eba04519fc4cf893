# Set-up and entry commands. `make run` and `make test` work on a fresh clone with nothing
# installed but Python 3.11: they create .venv and install the project into it first.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(abspath $(VENV))/bin
export PATH := $(BIN):$(PATH)
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONHASHSEED ?= 0
PYTEST_ARGS ?=

.PHONY: run test install install-test ui lint clean-venv

$(VENV)/.stamp-run: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.stamp-test: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.stamp-run

install: $(VENV)/.stamp-run
install-test: $(VENV)/.stamp-test

## run: the main job: `dvc repro` on the embedded default (synthetic faces)
run: install
	$(BIN)/dvc repro

## test: the test suite (slow tests included)
test: install-test
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## ui: the MLflow UI on 127.0.0.1 over the project's store
ui: install
	$(BIN)/mlflow ui --host 127.0.0.1 --port 5000 \
	  --backend-store-uri "sqlite:///$(CURDIR)/mlflow.db" --default-artifact-root "$(CURDIR)/mlartifacts"

lint: install-test
	$(BIN)/hadolint Dockerfile

clean-venv:
	rm -rf $(VENV)
