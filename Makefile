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
UI_PORT ?= 5000
# TensorFlow build: cpu (default) or gpu (CUDA wheels), e.g. `make run TF=gpu`. The two cannot
# share a venv; switching uninstalls the other one first.
TF ?= cpu
ifeq ($(filter $(TF),cpu gpu),)
$(error TF must be cpu or gpu, got '$(TF)')
endif
TF_OTHER := $(if $(filter gpu,$(TF)),cpu,gpu)
TF_OTHER_DIST := $(if $(filter gpu,$(TF)),tensorflow-cpu,tensorflow)

.PHONY: run test test-fast install install-test ui browser lint clean-venv

$(VENV)/.stamp-run-$(TF): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip uninstall -qq --yes $(TF_OTHER_DIST)
	rm -f $(VENV)/.stamp-run-$(TF_OTHER) $(VENV)/.stamp-test-$(TF_OTHER)
	$(BIN)/python -m pip install --quiet -e '.[$(TF)]'
	touch $@

$(VENV)/.stamp-test-$(TF): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip uninstall -qq --yes $(TF_OTHER_DIST)
	rm -f $(VENV)/.stamp-run-$(TF_OTHER) $(VENV)/.stamp-test-$(TF_OTHER)
	$(BIN)/python -m pip install --quiet -e '.[$(TF),test]'
	touch $@ $(VENV)/.stamp-run-$(TF)

install: $(VENV)/.stamp-run-$(TF)
install-test: $(VENV)/.stamp-test-$(TF)

## run: the main job: `dvc repro` on the embedded default (synthetic faces)
run: install
	$(BIN)/dvc repro

## test: the test suite (slow tests included; installs Debian's chromium for the UI screenshot test)
test: install-test browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## test-fast: the quick tier (tests/unit without the slow marker), for the edit-test loop
test-fast: install-test
	$(BIN)/python -m pytest tests/unit -m "not slow" $(PYTEST_ARGS)

## ui: the MLflow UI on http://127.0.0.1:$(UI_PORT) over the project's store (make ui UI_PORT=5001)
ui: install
	@echo "MLflow UI: http://127.0.0.1:$(UI_PORT) (store: $(CURDIR)/mlflow.db; Ctrl-C stops it)"
	@echo "the trainings, per network, in the model-training view: $$($(BIN)/python -m fer_xai.mlflow_ui \
	  --base http://127.0.0.1:$(UI_PORT) --store "sqlite:///$(CURDIR)/mlflow.db")"
	$(BIN)/mlflow ui --host 127.0.0.1 --port $(UI_PORT) --workers 1 \
	  --backend-store-uri "sqlite:///$(CURDIR)/mlflow.db" --default-artifact-root "$(CURDIR)/mlartifacts"

## browser: Debian's chromium (headless screenshot of the UI in the tests), installed when missing
browser:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing Debian's chromium for the UI screenshot test"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null; } \
	    || echo "note: could not install chromium; the UI screenshot test will be skipped"; \
	else \
	  echo "note: chromium not found and not installable here (needs root and apt-get);" \
	    "the UI screenshot test will be skipped (install Debian's chromium to run it)"; \
	fi

lint: install-test
	$(BIN)/hadolint Dockerfile

clean-venv:
	rm -rf $(VENV)
