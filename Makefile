# Quick start: `make demo` (set up + main job) and `make test` (set up + every check).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOME_DIR ?= .tunetrust-demo

.PHONY: setup demo test lint typecheck pytest bench clean constraints

# constraints.txt pins the versions the suite was last run with (refresh: make constraints)
$(BIN)/tunetrust: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]" -c constraints.txt
	touch $@

setup: $(BIN)/tunetrust

demo: setup
	rm -rf $(HOME_DIR)  # the demo home is rebuilt from synthetic data on every run
	$(BIN)/tunetrust --home $(HOME_DIR) demo
	@echo "Starting the members' web app: open one of the links above. Ctrl-C stops it."
	$(BIN)/tunetrust --home $(HOME_DIR) serve --port 8000

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports  # the layer contract in pyproject.toml

typecheck: setup
	$(BIN)/mypy

pytest: setup
	$(BIN)/pytest -n auto

test: lint typecheck pytest

bench: setup
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/insights.py
	$(BIN)/python bench/validate.py
	$(BIN)/python bench/memory.py
	$(BIN)/python bench/web.py

clean:
	rm -rf $(VENV) $(HOME_DIR) .pytest_cache .mypy_cache .ruff_cache

constraints: setup
	$(BIN)/pip install --quiet --upgrade -e ".[dev]"
	$(BIN)/pip freeze --exclude-editable | grep -v '^tunetrust' > constraints.txt
