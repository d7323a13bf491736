# Fluxo: the commands a newcomer needs. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Reinstall whenever pyproject.toml changes.
STAMP := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-12)
PYTEST_ARGS ?=
# Kafka brokers of `make infra`: 3 starts a replicated KRaft cluster.
BROKERS ?= 1

.PHONY: help install prepare test infra run bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP) ## create .venv and install Fluxo with its dev dependencies

prepare: install ## fetch the Kafka broker jars, make sure PostgreSQL's server binaries are there, build the S3 server (needs Go)
	$(PY) -m shared.infra --prepare

test: prepare ## install everything, then run the whole test suite against real Kafka, PostgreSQL and S3
	$(PY) -m pytest $(PYTEST_ARGS)

infra: prepare ## start a local Kafka broker (BROKERS=3: a cluster), PostgreSQL and an S3 server until Ctrl-C, printing their addresses
	$(PY) -m shared.infra --brokers $(BROKERS)

run: prepare ## start Kafka, PostgreSQL and the six services locally, until Ctrl-C
	$(PY) -m deploy.local $(RUN_ARGS)

bench: prepare ## run every benchmark against real Kafka and PostgreSQL, write bench/results/
	$(PY) -m bench

clean: ## remove the virtualenv and caches (the Kafka jars and S3 server in ~/.cache/fluxo stay)
	rm -rf $(VENV) .pytest_cache build *.egg-info
