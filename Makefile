# The two README commands: `make demo` and `make test`. Both run the idempotent set-up first.
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup demo test test-fast docker-test lint bench clean

setup:
	@bash scripts/setup.sh

demo: setup
	$(BIN)/medallion demo

test: setup
	$(BIN)/python -m pytest -q --durations=25

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow"

# The Docker stack built and run for real (scripts/docker_test.py, docker/README.md): installs the
# engine if missing (root, Debian), builds the images, checks the stack end to end, tears it down.
docker-test:
	python3 scripts/docker_test.py

lint: setup
	$(BIN)/ruff check medallion generators spark_jobs tests
	$(BIN)/mypy

bench: setup
	$(BIN)/medallion bench

clean:
	rm -rf demo-data .pytest_cache .mypy_cache .ruff_cache
