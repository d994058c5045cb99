# Two commands do all set-up: `make run` and `make test`. Both start with `make setup`.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup run test lint typecheck pytest bench eval clean

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

# Each script prints a table and writes bench/results/<name>.json; bench/README.md has the figures.
bench: setup
	$(BIN)/python bench/probes_overhead.py
	$(BIN)/python bench/celery_loop.py
	$(BIN)/python bench/slack_ack.py
	$(BIN)/python bench/scenarios.py
	$(BIN)/python bench/prompt_budget.py

# The fault eval (bench/eval): every fault quiet and with background noise; as root.
# Writes bench/results/eval.json; options: make eval EVAL_ARGS="--only disk_full --repeat 3".
eval: setup
	$(BIN)/python -m bench.eval $(EVAL_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
