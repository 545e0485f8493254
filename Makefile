# MedLedger. The README's two commands: `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := $(CURDIR)/.venv
export PATH := $(VENV)/bin:$(CURDIR)/node_modules/.bin:$(PATH)
BROWNIE := $(VENV)/bin/brownie
PYTHON := $(VENV)/bin/python

.PHONY: help setup compile demo test lint bench coverage slither clean

help:
	@echo "make demo   - install what is missing, launch Ganache, deploy, run the end-to-end scenario"
	@echo "make test   - install what is missing, run every test on Ganache"
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
	@$(PYTHON) -m ruff check medledger scripts tests tools

bench: setup
	@$(BROWNIE) compile >/dev/null
	@$(PYTHON) tools/brownie_run.py scripts/bench.py --network medledger-ganache

MIN_BRANCH ?= 95
coverage: setup
	@rm -f build/tests.json reports/coverage.json reports/coverage-summary.md
	@$(BROWNIE) test tests --coverage --network medledger-anvil $(ARGS)
	@$(PYTHON) tools/coverage_summary.py --min-branch $(MIN_BRANCH)

slither: setup
	@tools/slither.sh $(ARGS)

clean:
	rm -rf build reports/*.json
