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
	@$(BROWNIE) run scripts/demo.py --network medledger-ganache

test: setup
	@$(BROWNIE) test tests --network medledger-ganache $(ARGS)

lint: setup
	@$(PYTHON) -m ruff check medledger scripts tests 2>/dev/null || $(PYTHON) -m pyflakes medledger scripts tests

bench: setup
	@$(BROWNIE) run scripts/bench.py --network medledger-ganache

coverage: setup
	@$(BROWNIE) test tests --coverage --network medledger-anvil

slither: setup
	@tools/slither.sh

clean:
	rm -rf build reports/*.json
