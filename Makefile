# The README's two commands: `make demo` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint dev bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Install, start the sandbox, sync its two years, print what was posted.
demo: $(STAMP)
	$(BIN)/deltek-procore demo

# Install everything, lint, run the whole suite (PostgreSQL tests use 127.0.0.1:5432).
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/pytest -q -p no:cacheprovider

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The Dagster UI on the demo's data.
dev: $(STAMP)
	DAGSTER_HOME=$(CURDIR)/.dagster_home \
		$(BIN)/dagster dev -w workspace.yaml

bench: $(STAMP)
	$(BIN)/python bench/run.py --records 1000 10000

clean:
	rm -rf $(VENV) .dagster_home .pytest_cache .ruff_cache *.egg-info
