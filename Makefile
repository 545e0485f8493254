# MedLedger. The README's two commands: `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := $(CURDIR)/.venv
export PATH := $(VENV)/bin:$(CURDIR)/node_modules/.bin:$(PATH)
BROWNIE := $(VENV)/bin/brownie
PYTHON := $(VENV)/bin/python

# Test modules that drive the chain only through the SDK/CLI subprocesses or not at all: brownie
# measures coverage from its own transactions, so they add nothing to `make coverage` but hours of
# traced transactions. `make test` runs them all.
NO_CONTRACT_COVERAGE = --ignore-glob='tests/test_cli_*' --ignore=tests/test_faults.py \
	--ignore=tests/test_no_phi.py --ignore=tests/test_bench.py --ignore=tests/test_deploy_live.py \
	--ignore=tests/test_pipeline.py --ignore=tests/test_crypto.py --ignore=tests/test_vault.py \
	--ignore=tests/test_fhir.py --ignore=tests/test_kit.py --ignore=tests/test_packaging.py \
	--ignore=tests/test_fhir_validation.py --ignore=tests/test_index.py --ignore=tests/test_gateway.py \
	--ignore=tests/test_data_classes.py --ignore=tests/test_l2fees.py --ignore=tests/test_privacy_primitives.py \
	--ignore=tests/test_units.py

.PHONY: help setup compile demo test lint bench coverage slither clean

help:
	@echo "make demo   - install what is missing, launch Ganache, deploy, run the end-to-end scenario"
	@echo "make test   - install what is missing, run every test (Ganache, Anvil, PostgreSQL, gateway)"
	@echo "make bench | coverage | slither | lint - see README, Development"

setup:
	@tools/setup.sh

compile: setup
	@$(BROWNIE) compile

demo: setup
	@$(BROWNIE) compile >/dev/null
	@$(PYTHON) tools/brownie_run.py scripts/demo.py --network medledger-ganache

test: setup
	@$(BROWNIE) test tests --network medledger-ganache $(ARGS)

lint: setup
	@$(PYTHON) -m ruff check medledger benchmarks scripts tests tools

bench: setup
	@$(BROWNIE) compile >/dev/null
	@$(PYTHON) tools/brownie_run.py scripts/bench.py --network medledger-ganache

MIN_BRANCH ?= 95
coverage: setup
	@rm -f build/tests.json reports/coverage.json reports/coverage-summary.md
	@$(BROWNIE) test tests --coverage --network medledger-anvil $(NO_CONTRACT_COVERAGE) $(ARGS)
	@$(PYTHON) tools/coverage_summary.py --min-branch $(MIN_BRANCH)

slither: setup
	@tools/slither.sh $(ARGS)

clean:
	rm -rf build reports/*.json
