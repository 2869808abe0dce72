# The two README commands: `make demo` and `make test`. Both run the idempotent set-up first.
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup demo test test-fast lint bench clean

setup:
	@bash scripts/setup.sh

demo: setup
	$(BIN)/medallion demo

test: setup
	$(BIN)/python -m pytest -q --durations=25

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow"

lint: setup
	$(BIN)/ruff check medallion generators spark_jobs tests
	$(BIN)/mypy

bench: setup
	$(BIN)/medallion bench

clean:
	rm -rf demo-data .pytest_cache .mypy_cache .ruff_cache
