# Two commands do all set-up: `make run` and `make test`. Both start with `make setup`.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup run test lint typecheck pytest bench eval clean images test-deploy

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

# The whole suite, the compose stack end to end included (tests/deploy/test_stack.py builds the
# images with podman: about 2 min with them cached, 5 min from nothing).
test: setup
	$(BIN)/ruff check bot worker probes prompts tests bench
	$(BIN)/ruff format --check bot worker probes prompts tests bench
	$(BIN)/mypy bot worker probes
	BPFSLEUTH_TEST_DEPLOY=1 $(BIN)/pytest
	$(KERNELS_SMOKE)

# Each script prints a table and writes bench/results/<name>.json; bench/README.md has the figures.
bench: setup
	$(BIN)/python bench/probes_overhead.py
	$(BIN)/python bench/celery_loop.py
	$(BIN)/python bench/slack_ack.py
	$(BIN)/python bench/scenarios.py
	$(BIN)/python bench/prompt_budget.py
	$(BIN)/python bench/sandbox.py

# Container images with podman (docs/deploy.md): bpfsleuth and its Redis, on a local debian:12
# base when no registry is reachable.
images: setup
	@bash scripts/images.sh

# The compose stack end to end as docs/deploy.md runs it (builds the images: ~5 min cold,
# ~1.5 min with the images cached). Not part of `make test`.
test-deploy: setup
	BPFSLEUTH_TEST_DEPLOY=1 $(BIN)/pytest -v -s tests/deploy

# The fault eval (bench/eval): every fault quiet and with background noise; as root.
# Writes bench/results/eval.json; options: make eval EVAL_ARGS="--only disk_full --repeat 3".
eval: setup
	$(BIN)/python -m bench.eval $(EVAL_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache

# The kernel matrix (docs/kernels.md): stock Debian kernels 5.10, 6.1 and 6.12 booted under QEMU,
# every probe, the doctor, the resolver and three scenarios inside each; needs root. Caches live in
# $(BPFSLEUTH_KERNELS_CACHE) (default /var/cache/bpfsleuth-kernels). Writes bench/results/kernels.json.
KERNELS ?= 5.10,6.1,6.12
KERNELS_ENV := BPFSLEUTH_KERNELS_CPU_LOCK=$${BPFSLEUTH_KERNELS_CPU_LOCK-}

.PHONY: test-kernels test-kernels-smoke test-kernels-faults
test-kernels: setup
	$(KERNELS_ENV) python3 scripts/kernels/kernels.py run --kernels $(KERNELS)
	BPFSLEUTH_KERNELS=1 $(BIN)/pytest tests/kernels -p no:cacheprovider

# The oldest kernel, light, as part of `make test` (as root; skipped otherwise): the doctor, every
# probe compiled and attached, the resolver, one scenario in a 5.10 VM, and a VM that misses its boot
# deadline killed with nothing left behind (docs/kernels.md: 6-10 min warm, plus the image cold).
KERNELS_SMOKE := BPFSLEUTH_KERNELS_SMOKE=1 $(BIN)/pytest -p no:cacheprovider -v tests/kernels/test_smoke.py \
	tests/kernels/test_accel.py \
	"tests/kernels/test_faults.py::test_a_vm_past_its_deadline_is_killed_and_says_so[boot]"
test-kernels-smoke: setup
	$(KERNELS_SMOKE)

test-kernels-faults: setup
	BPFSLEUTH_KERNELS=1 $(BIN)/pytest tests/kernels -p no:cacheprovider
