# Two commands do all set-up: `make run` and `make test`. Both start with `make setup`.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup run test lint typecheck pytest bench clean

setup:
	@bash scripts/setup.sh

run: setup
	@$(BIN)/bpfsleuth doctor
	@$(BIN)/bpfsleuth demo

lint: setup
	$(BIN)/ruff check bot worker probes prompts tests bench
	$(BIN)/ruff format --check bot worker probes prompts tests bench

typecheck: setup
	$(BIN)/mypy bot worker probes

pytest: setup
	$(BIN)/pytest

test: setup
	$(BIN)/ruff check bot worker probes prompts tests bench
	$(BIN)/ruff format --check bot worker probes prompts tests bench
	$(BIN)/mypy bot worker probes
	$(BIN)/pytest

bench: setup
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
